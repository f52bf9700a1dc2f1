"""IPT inference speed in megapixels per second (run by hand; prints figures).

Per 48x48 tile (the only input the network takes; ~33 G MACs at x1, ~35 G at x4): ``--batch``
tiles per forward, random weights of the released size (115 M parameters), on the CPU in
float32 and, when CUDA is available, in float32 and with autocast (bf16 by default). MP/s counts
input pixels (48 * 48 per tile). On the CPU the attention is also timed the way the official code
runs it (``nn.MultiheadAttention`` called with its default ``need_weights=True``, sequence-first),
to check that ``scaled_dot_product_attention`` is not slower. A last row per device restores a
whole ``--image`` x ``--image`` picture by the official patch-wise rule (``forward_any_size``).

    python benchmarks/ipt_speed.py [--scale 1 4] [--batch 8] [--iters 3] [--image 96]
                                   [--gpu-batch 64] [--gpu-image 512] [--amp bf16|fp16] [--cpu-only]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from restore.methods.ipt.arch import IPT, Attention


class OfficialAttention(nn.Module):
    """The same weights through ``nn.MultiheadAttention`` as the official layers call it."""

    def __init__(self, ours: Attention) -> None:
        super().__init__()
        dim = ours.in_proj_weight.shape[1]
        self.mha = nn.MultiheadAttention(dim, ours.heads, bias=False).to(ours.in_proj_weight.device)
        self.mha.load_state_dict(ours.state_dict())

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        q, k, v = (t.transpose(0, 1) for t in (query, key, value))  # sequence-first, as officially
        return self.mha(q, k, value=v)[0].transpose(0, 1)


def with_official_attention(model: IPT) -> IPT:
    for layer in [*model.body.encoder.layers, *model.body.decoder.layers]:
        for name in ("self_attn", "multihead_attn"):
            if hasattr(layer, name):
                setattr(layer, name, OfficialAttention(getattr(layer, name)))
    return model


def timed(fn, device: str, iters: int, amp: str | None) -> float:
    """Seconds per call of ``fn`` (one warm-up call first)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else nullcontext()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode(), autocast:
        fn()
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 4], help="tasks to time (one model each)")
    parser.add_argument("--batch", type=int, default=8, help="tiles per forward on the CPU")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per CPU setting")
    parser.add_argument("--image", type=int, default=96, help="whole-image side on the CPU (0: skip)")
    parser.add_argument("--gpu-batch", type=int, default=64, help="tiles per forward on CUDA (official 64)")
    parser.add_argument("--gpu-iters", type=int, default=10)
    parser.add_argument("--gpu-image", type=int, default=512, help="whole-image side on CUDA (0: skip)")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default="bf16", help="CUDA autocast dtype")
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()

    print(f"IPT, 48x48 tiles, torch {torch.__version__}")
    print("| device | precision | attention | scale | input | tiles/s | MP/s |\n|---|---|---|---:|---|---:|---:|")
    runs = [("cpu", None, args.batch, args.iters, args.image)]
    if torch.cuda.is_available() and not args.cpu_only:
        runs += [("cuda", None, args.gpu_batch, args.gpu_iters, args.gpu_image),
                 ("cuda", args.amp, args.gpu_batch, args.gpu_iters, args.gpu_image)]
    for scale in args.scale:
        torch.manual_seed(0)
        model = IPT(scale=scale).eval()
        for device, amp, batch, iters, image in runs:
            model.to(device)
            label = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
            tiles = torch.rand(batch, 3, 48, 48, device=device)
            variants = [("sdpa", model)]
            if device == "cpu":
                variants.append(("official MHA", with_official_attention(IPT(scale=scale).eval())))
            for name, net in variants:
                seconds = timed(lambda: net(tiles), device, iters, amp)
                rate = batch / seconds
                mps = rate * 48 * 48 / 1e6
                print(f"| {label} | {amp or 'fp32'} | {name} | {scale} | {batch} x 48x48 | {rate:.2f} | {mps:.4f} |")
            if image:
                x = torch.rand(1, 3, image, image, device=device)
                seconds = timed(lambda: model.forward_any_size(x), device, 1, amp)
                mps = image * image / seconds / 1e6
                print(f"| {label} | {amp or 'fp32'} | sdpa | {scale} | {image}x{image} image | - | {mps:.4f} |")


if __name__ == "__main__":
    main()
