"""LAB-Net inference speed at 640x480 (the ISTD test size) with a realistic shadow mask (run by hand).

Times the whole path ``restore infer`` runs per image (RGB -> OpenCV LAB, mask binarisation and
dilation, the network with its four local spatial attention blocks at 256x256, LAB -> RGB) through
:class:`~restore.engine.inference.Restorer`, on the CPU and, when CUDA is available, on the GPU in
float32 and with bf16 autocast (``infer.precision``). Prints megapixels per second.

It also times one attention step alone at the working resolution, memory-efficient
(``scaled_dot_product_attention``) against the official direct computation (the full
|shadow| x |ring| softmax matrix), whose size it prints.

The mask is ``../shared/data/shadow/masks/USR_1.png`` resized (nearest) to 640x480 when present
(a real cast shadow, about a third of the image), else an ellipse over ~15 % of the image.

    python benchmarks/labnet_speed.py [--repeat 3] [--device auto|cpu|cuda] [--down 256] [--no-direct]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from restore.methods.labnet.arch import LABNet, local_spatial_attention
from restore.engine.inference import Restorer

ROOT = Path(__file__).resolve().parents[1]
REAL_MASK = ROOT.parent / "shared" / "data" / "shadow" / "masks" / "USR_1.png"
REAL_IMAGE = ROOT.parent / "shared" / "data" / "shadow" / "images" / "USR_1.jpg"
H, W = 480, 640


def inputs() -> tuple[torch.Tensor, torch.Tensor, str]:
    """(1, 3, 480, 640) RGB and (1, 1, 480, 640) mask in [0, 1], and where they came from."""
    if REAL_MASK.is_file() and REAL_IMAGE.is_file():
        mask = cv2.resize(cv2.imread(str(REAL_MASK), cv2.IMREAD_GRAYSCALE), (W, H), interpolation=cv2.INTER_NEAREST)
        image = cv2.resize(cv2.imread(str(REAL_IMAGE)), (W, H), interpolation=cv2.INTER_AREA)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        source = f"{REAL_IMAGE.name} + {REAL_MASK.name} resized to {W}x{H}"
    else:
        mask = np.zeros((H, W), np.uint8)
        cv2.ellipse(mask, (W // 2, H // 2), (W // 4, H // 5), 0, 0, 360, 255, -1)
        image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
        source = "random image + ellipse mask"
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None].float() / 255
    return x, m, source


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_restorer(net: LABNet, x: torch.Tensor, mask: torch.Tensor, device: torch.device, amp: str | None,
                  repeat: int) -> float:
    """Seconds per image (median of ``repeat`` after one warm-up)."""
    restorer = Restorer(net, precision=amp or "fp32", device=device)
    restorer(x, mask)
    times = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        restorer(x, mask)
        sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def direct_attention(q: torch.Tensor, k: torch.Tensor, shadow: torch.Tensor, ring: torch.Tensor) -> torch.Tensor:
    """The official loop: full |S| x |R| softmax matrix per sample."""
    k = k.clone()
    for i in range(q.shape[0]):
        s, r = shadow[i], ring[i]
        a = torch.softmax(q[i][:, s].t() @ k[i][:, r] / math.sqrt(q.shape[1]), dim=-1)
        k[i][:, s] = (a @ k[i][:, r].t()).t()
    return k


def time_attention(net: LABNet, mask: torch.Tensor, device: torch.device, direct: bool) -> None:
    binary, dilated = net.prepare_mask(mask.to(device))
    shadow, ring = net.attention_regions(binary, dilated)
    n_s, n_r = int(shadow.sum()), int(ring.sum())
    c = net.spaatt1.conv_s.conv2d.out_channels  # 48 at channels 32
    q = torch.randn(1, c, shadow.shape[1], device=device)
    k = torch.randn(1, c, shadow.shape[1], device=device)
    print(f"  attention at {net.down_size[0]}x{net.down_size[1]}: |shadow| {n_s:,}, |ring| {n_r:,}, "
          f"direct matrix {n_s * n_r * 4 / 2**20:,.0f} MiB per block")
    for name, fn in (("memory-efficient", local_spatial_attention), ("direct", direct_attention)):
        if name == "direct" and not direct:
            continue
        with torch.no_grad():
            fn(q, k, shadow, ring)
            sync(device)
            start = time.perf_counter()
            fn(q, k, shadow, ring)
            sync(device)
        print(f"  one attention step, {name}: {time.perf_counter() - start:.3f} s (x4 blocks per image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto", help="auto (CPU, then CUDA if available), cpu or cuda")
    parser.add_argument("--down", type=int, default=256, help="attention working resolution (ISTD 256, SRD 128)")
    parser.add_argument("--no-direct", action="store_true", help="skip timing the direct (official) attention")
    args = parser.parse_args()

    torch.manual_seed(0)
    x, mask, source = inputs()
    print(f"LAB-Net (channels 32, down {args.down}, random init) at {W}x{H}: {source}, "
          f"shadow {float((mask > 0.9).float().mean()):.1%} of the image; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    devices = ["cpu", "cuda"] if args.device == "auto" else [args.device]
    mp = H * W / 1e6
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print("cuda: not available")
            continue
        device = torch.device(dev)
        net = LABNet(down_size=args.down).to(device).eval()
        label = torch.cuda.get_device_name(device) if dev == "cuda" else "cpu"
        for amp in ([None, "bf16"] if dev == "cuda" else [None]):
            seconds = time_restorer(net, x, mask, device, amp, args.repeat)
            print(f"{label} {amp or 'fp32'}: {seconds:.3f} s/image, {mp / seconds:.3f} megapixels/s")
        time_attention(net, mask, device, direct=not args.no_direct)


if __name__ == "__main__":
    main()
