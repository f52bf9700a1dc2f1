"""The quickstart denoiser and its Kodak24 test set, as the hand-run benchmarks that score it load
them (imported as a sibling module: run them as ``python benchmarks/<name>.py``).

The noisy images are restore's synthetic_noise test set of
``options/unet/test/denoise_gauss25_unet.yml`` (Kodak24, Gaussian sigma 25, noise seeded per image
name) with ``quantize: true``: rounded to 8 bits and clipped, as a saved noisy photo is.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

ROOT = Path(__file__).resolve().parents[1]
TEST_OPTIONS = ROOT / "options" / "unet" / "test" / "denoise_gauss25_unet.yml"


@dataclass
class KodakDenoise:
    """The loaded options, the Kodak24 test set (its spec and dataset), the process context, and
    the quickstart network with its weights, in eval mode."""

    options: Any
    spec: Any
    dataset: Any
    ctx: Any
    model: nn.Module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--data`` and ``--max-images``, with the quickstart's defaults."""
    parser.add_argument("--weights", default="quickstart/experiments/quickstart_denoise/models/final.pth")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "kodak24"))
    parser.add_argument("--max-images", type=int, default=None, help="the first N images only (a quick try)")


def load(args: argparse.Namespace) -> KodakDenoise:
    """Kodak24 with 8-bit noisy inputs and the quickstart's residual UNet from ``args.weights``."""
    from restore.config import load_options
    from restore.engine import distributed
    from restore.engine.checkpoint import load_weights
    from restore.engine.network import build_network
    from restore.engine.weights_meta import match_network

    overrides = [f"datasets.test.kodak24.root={args.data}", "datasets.test.kodak24.quantize=true",
                 "datasets.test.kodak24.save_images=false", "datasets.test.set14=null"]
    if args.max_images:
        overrides.append(f"datasets.test.kodak24.max_images={args.max_images}")
    options = load_options(TEST_OPTIONS, overrides)
    options = match_network(options, args.weights, network_from_weights=True)  # the quickstart's residual UNet
    spec = options.datasets.test["kodak24"]
    model = build_network(options)
    load_weights(model, args.weights)
    return KodakDenoise(options, spec, spec.dataset.build(), distributed.setup("cpu"), model.eval())
