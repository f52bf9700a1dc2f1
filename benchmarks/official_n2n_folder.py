"""The official Neighbor2Neighbor validation loop over a folder, as a standalone script (the
reference of ``vs_reference.py --processes``; run by hand).

Per image, as the official ``validation`` code: read 8-bit RGB, /255, numpy ``reflect`` pad at the
bottom and right to a square whose side is a multiple of 32, the network, crop,
``clip(x * 255 + 0.5, 0, 255)`` to uint8, write PNG. The network class is restore's N2N UNet, which
is the official one (same modules and keys); nothing else of restore is used.

    python benchmarks/official_n2n_folder.py --weights W.pth --input DIR --output DIR [--n-feature 48]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restore.archs.n2n_unet import N2NUNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--n-feature", type=int, default=48)
    args = parser.parse_args()
    net = N2NUNet(in_nc=3, out_nc=3, n_feature=args.n_feature)
    net.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    net.eval()
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(args.input).glob("*.png")):
        im = np.array(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        h, w, _ = im.shape
        side = (max(h, w) + 31) // 32 * 32
        padded = np.pad(im, [[0, side - h], [0, side - w], [0, 0]], "reflect")
        x = torch.from_numpy(np.transpose(padded, (2, 0, 1)).copy())[None]
        with torch.no_grad():
            y = net(x)[0, :, :h, :w].permute(1, 2, 0).numpy()
        Image.fromarray(np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)).save(out_dir / path.name)


if __name__ == "__main__":
    main()
