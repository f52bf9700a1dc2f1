"""Uformer forward speed in megapixels per second (run by hand; prints a table).

Uformer-T and Uformer-B (random weights, eval mode, batch 1) on 256x256 inputs: on the CPU in
float32, and on the GPU with AMP (fp16 and bf16 autocast) when CUDA is available. With
``--naive-attention`` each CPU row is also timed with the attention core written as the official
code writes it (``(q * scale) @ k^T + bias``, softmax, ``@ v``) instead of
``scaled_dot_product_attention``, to compare the two on the same machine.

    python benchmarks/uformer_speed.py [--variants T B] [--size 256] [--repeats 5] [--naive-attention]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from unittest import mock

import torch
import torch.nn.functional as F
from timing import median_seconds

from restore.methods.uformer.arch import UformerB, UformerS, UformerT

VARIANTS = {"T": UformerT, "S": UformerS, "B": UformerB}


def naive_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=None, **_):  # noqa: ANN001, ANN202
    """The official op sequence (no dropout: eval only)."""
    logits = (q * (q.shape[-1] ** -0.5 if scale is None else scale)) @ k.transpose(-2, -1)
    if attn_mask is not None:
        logits = logits + attn_mask
    return logits.softmax(-1) @ v


def seconds_per_forward(model: torch.nn.Module, x: torch.Tensor, repeats: int, amp: torch.dtype | None) -> float:
    """Median wall time of one forward (after two warm-up runs)."""
    cuda = x.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=amp) if amp is not None else nullcontext()
    with torch.inference_mode(), autocast:
        return median_seconds(lambda: model(x), repeats, cuda)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["T", "B"], choices=sorted(VARIANTS))
    parser.add_argument("--size", type=int, default=256, help="square input side (a multiple of 128)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-attention", action="store_true", help="also time the official attention op sequence")
    parser.add_argument("--no-cpu", action="store_true", help="GPU rows only")
    args = parser.parse_args()

    megapixels = args.size * args.size / 1e6
    print(f"input 1x3x{args.size}x{args.size}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"))
    print("| variant | device | precision | attention | ms / image | MP/s |\n|---|---|---|---|---:|---:|")
    for name in args.variants:
        torch.manual_seed(0)
        model = VARIANTS[name]().eval()
        rows: list[tuple[str, str, str, torch.device, torch.dtype | None]] = []
        if not args.no_cpu:
            rows.append(("cpu", "fp32", "sdpa", torch.device("cpu"), None))
            if args.naive_attention:
                rows.append(("cpu", "fp32", "official", torch.device("cpu"), None))
        if torch.cuda.is_available():
            rows += [("cuda", "fp32", "sdpa", torch.device("cuda"), None),
                     ("cuda", "amp fp16", "sdpa", torch.device("cuda"), torch.float16),
                     ("cuda", "amp bf16", "sdpa", torch.device("cuda"), torch.bfloat16)]
        for device_name, precision, attention, device, amp in rows:
            model.to(device)
            x = torch.rand(1, 3, args.size, args.size, device=device)
            patch = (mock.patch.object(F, "scaled_dot_product_attention", naive_attention)
                     if attention == "official" else nullcontext())
            with patch:
                seconds = seconds_per_forward(model, x, args.repeats, amp)
            print(f"| Uformer-{name} | {device_name} | {precision} | {attention} | {seconds * 1e3:.0f} | "
                  f"{megapixels / seconds:.3f} |")


if __name__ == "__main__":
    main()
