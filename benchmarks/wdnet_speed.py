"""WDNet inference speed in megapixels per second (run by hand; prints figures).

Times the released configuration (3.92 M parameters, ~17.1 G MACs per 256x256 image) on random
256x256 RGB inputs: float32 on the CPU (batch 1, ``--cpu-iters`` forwards), and when CUDA is
available float32 and autocast (bf16 by default) for each ``--batch`` (``--iters`` forwards).
Each setting is warmed up first.

    python benchmarks/wdnet_speed.py [--size 256] [--batch 1 8 32] [--iters 20] [--cpu-iters 3]
                                     [--amp bf16|fp16] [--cpu-only]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from restore.methods.wdnet.arch import WDNet


def measure(net: torch.nn.Module, device: str, size: int, batch: int, iters: int, amp: str | None) -> float:
    """Megapixels per second of ``net`` on ``batch`` x 3 x ``size`` x ``size`` inputs."""
    x = torch.rand(batch, 3, size, size, device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else nullcontext()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode(), autocast:
        for _ in range(1 if device == "cpu" else 5):
            net(x)
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            net(x)
        sync()
        seconds = time.perf_counter() - start
    return batch * size * size * iters / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side (multiple of 4)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32], help="CUDA batch sizes")
    parser.add_argument("--iters", type=int, default=20, help="timed forwards per CUDA setting")
    parser.add_argument("--cpu-iters", type=int, default=3, help="timed forwards on the CPU (batch 1)")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default="bf16", help="CUDA autocast dtype")
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()

    net = WDNet().eval()
    params = sum(p.numel() for p in net.parameters())
    print(f"WDNet, {params:,} parameters, {args.size}x{args.size} RGB input, torch {torch.__version__}")
    print("| device | precision | batch | MP/s | images/s |\n|---|---|---:|---:|---:|")
    runs = [("cpu", None, [1], args.cpu_iters)]
    if torch.cuda.is_available() and not args.cpu_only:
        runs += [("cuda", None, args.batch, args.iters), ("cuda", args.amp, args.batch, args.iters)]
    for device, amp, batches, iters in runs:
        net.to(device)
        label = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        for batch in batches:
            mps = measure(net, device, args.size, batch, iters, amp)
            print(f"| {label} | {amp or 'fp32'} | {batch} | {mps:.3f} | {mps * 1e6 / args.size**2:.2f} |")


if __name__ == "__main__":
    main()
