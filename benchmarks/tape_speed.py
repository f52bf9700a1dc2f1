"""TAPE-R (reconstruction) speed in megapixels per second: inference and stage-1 training steps.

Random weights, batch 1 inference at ``--size`` (a multiple of 64) and stage-1 training steps
(forward with the prior head, the clean-image encoder pass, backward, AdamW) at batch ``--batch``
of ``--crop`` crops. CPU in float32; on CUDA also with fp16 and bf16 autocast. Run by hand:

    python benchmarks/tape_speed.py [--variants tape_r tape_r_base] [--size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import torch
from timing import median_seconds

from restore.methods.tape.arch import TAPER, TAPERBase

VARIANTS = {"tape_r": TAPER, "tape_r_base": TAPERBase}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["tape_r"], choices=sorted(VARIANTS))
    parser.add_argument("--size", type=int, default=256, help="inference side (multiple of 64)")
    parser.add_argument("--crop", type=int, default=128, help="training crop side (multiple of 64)")
    parser.add_argument("--batch", type=int, default=8, help="training batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cpu", action="store_true", help="GPU rows only")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    print(f"TAPE-R (reconstruction); {torch.get_num_threads()} CPU threads, torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name()}" if cuda else ", no CUDA"))
    rows = [] if args.no_cpu else [("cpu", "fp32", None)]
    if cuda:
        rows += [("cuda", "fp32", None), ("cuda", "amp fp16", torch.float16), ("cuda", "amp bf16", torch.bfloat16)]
    print("| variant | params | device | precision | infer ms | infer MP/s | train step ms | train MP/s |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for name in args.variants:
        for device_name, precision, amp in rows:
            torch.manual_seed(0)
            device = torch.device(device_name)
            net = VARIANTS[name](prior_loss=True).to(device)
            params = sum(p.numel() for p in net.parameters() if p is not net.prior_proj.weight
                         and p is not net.prior_proj.bias)
            autocast = torch.autocast("cuda", dtype=amp) if amp is not None else nullcontext()
            on_cuda = device.type == "cuda"

            x = torch.rand(1, 3, args.size, args.size, device=device)
            net.eval()

            def infer() -> None:
                with torch.inference_mode(), autocast:
                    net(x)

            t_inf = median_seconds(infer, args.repeats, on_cuda)

            net.train()
            opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
            scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
            xb = torch.rand(args.batch, 3, args.crop, args.crop, device=device)
            cb = torch.rand_like(xb)

            def train_step() -> None:
                with autocast:
                    pred, tokens = net(xb, return_prior=True)
                    with torch.no_grad():
                        clean = net.forward_features(cb)
                    loss = (pred - cb).abs().mean() + 0.1 * (tokens - clean).abs().mean()
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)

            t_train = median_seconds(train_step, args.repeats, on_cuda)
            mp_inf = args.size**2 / 1e6 / t_inf
            mp_train = args.batch * args.crop**2 / 1e6 / t_train
            print(f"| {name} | {params / 1e6:.3f} M | {device_name} | {precision} | {1e3 * t_inf:.1f} | {mp_inf:.2f} "
                  f"| {1e3 * t_train:.1f} | {mp_train:.2f} |")


if __name__ == "__main__":
    main()
