"""LAB-Net at 640x480 (the ISTD test size) with a real shadow mask: restore against the official
test procedure, interleaved in one process (run by hand).

Times the whole path ``restore infer`` runs per image (RGB -> OpenCV LAB, mask binarisation and
dilation, the network with its four local spatial attention blocks at 256x256, LAB -> RGB)
through :class:`~restore.engine.inference.Restorer`, against LAB-Net's ``test.py`` around the
official network op for op (``tests/methods/labnet/official.py`` via :mod:`references`), same
random weights and input. Per side: median wall time, CPU (user + system), system time and minor
page faults of one image, and the ratio restore / official. ``--profile`` adds torch.profiler
op tables (self CPU) of one call of each.

glibc serves every tensor above 32 MiB with a fresh mmap and returns it with munmap, so each
forward page-faults its memory in again; both sides pay that here. To see what remains without
it (what ``restore``'s process-level allocator setting gives the CLI), run with
``MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184``.

The mask is ``../shared/data/shadow/masks/USR_1.png`` resized (nearest) to 640x480 when present
(a real cast shadow, about a third of the image), else an ellipse. With CUDA, restore's path is
also timed on the GPU in float32 and bf16 autocast. One attention step alone (memory-efficient
against the official |shadow| x |ring| matrix) is timed at the end.

    python benchmarks/labnet_speed.py [--repeats 3] [--down 256] [--profile] [--no-direct]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import references
import torch
from timing import median_seconds
from vs_reference import shadow_inputs

from restore.engine.inference import Restorer
from restore.methods.labnet.arch import LABNet, local_spatial_attention


def measured(fn: Callable[[], object]) -> dict[str, float]:
    """Wall s, CPU s (user + system, all threads), system s and minor page faults of one call."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    system = after.ru_stime - before.ru_stime
    return {"wall": wall, "cpu": after.ru_utime - before.ru_utime + system, "sys": system,
            "faults": after.ru_minflt - before.ru_minflt}


def op_table(fn: Callable[[], object], rows: int = 15) -> str:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def time_attention(net: LABNet, mask: torch.Tensor, direct: bool) -> None:
    """One attention step at the working resolution, memory-efficient against the official matrix."""
    binary, dilated = net.prepare_mask(mask)
    shadow, ring = net.attention_regions(binary, dilated)
    n_s, n_r = int(shadow.sum()), int(ring.sum())
    c = net.spaatt1.conv_s.conv2d.out_channels  # 48 at channels 32
    q, k = torch.randn(1, c, shadow.shape[1]), torch.randn(1, c, shadow.shape[1])
    print(f"attention at {net.down_size[0]}x{net.down_size[1]}: |shadow| {n_s:,}, |ring| {n_r:,}, "
          f"official matrix {n_s * n_r * 4 / 2**20:,.0f} MiB per block")
    fns = {"memory-efficient": local_spatial_attention}
    if direct:
        fns["official (direct)"] = references.test_module("methods/labnet/test_arch.py").direct_attention
    with torch.no_grad():
        for name, fn in fns.items():
            seconds = median_seconds(lambda f=fn: f(q, k, shadow, ring), repeats=3, cuda=False, warmup=1)
            print(f"  one attention step, {name}: {seconds:.3f} s (x4 blocks per image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--down", type=int, default=256, help="attention working resolution (ISTD 256, SRD 128)")
    parser.add_argument("--profile", action="store_true", help="print op tables of one call of each side")
    parser.add_argument("--no-direct", action="store_true", help="skip timing the official attention step alone")
    args = parser.parse_args()

    torch.manual_seed(0)
    x, mask = shadow_inputs(quick=False)
    h, w = x.shape[-2:]
    net = LABNet(down_size=args.down).eval()
    restorer, official = Restorer(net), references.labnet_reference(net)
    sides = {"official": lambda: official(x, mask), "restore": lambda: restorer(x, mask)}
    print(f"LAB-Net (channels 32, down {args.down}, random init) at {w}x{h}, shadow "
          f"{float((mask > 0.9).float().mean()):.1%} of the image; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; median of {args.repeats} interleaved")
    outputs = {k: fn() for k, fn in sides.items()}  # warm-up
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    for _ in range(args.repeats):
        for k, fn in sides.items():
            runs[k].append(measured(fn))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    print("| side | wall s | CPU s | system s | minor faults | MP/s | wall / official |\n|---|---:|---:|---:|---:|---:|---:|")
    for k, m in med.items():
        print(f"| {k} | {m['wall']:.2f} | {m['cpu']:.1f} | {m['sys']:.1f} | {m['faults']:,.0f} | "
              f"{h * w / 1e6 / m['wall']:.3f} | {m['wall'] / med['official']['wall']:.2f} |")
    ratios = [r["wall"] / o["wall"] for r, o in zip(runs["restore"], runs["official"])]
    codes = ((outputs["restore"] - outputs["official"]).abs() * 255).round()
    print(f"per-run ratios {[round(v, 2) for v in ratios]}; outputs: {int((codes.amax(1) > 0).sum())} of {h * w} "
          f"pixels differ, by at most {int(codes.max())} codes (8-bit truncation ties)")
    if args.profile:
        for k, fn in sides.items():
            print(f"\n{k}: torch.profiler, one image\n{op_table(fn)}")
    if torch.cuda.is_available():
        gpu = LABNet(down_size=args.down).cuda().eval()
        for precision in ("fp32", "bf16"):
            r = Restorer(gpu, precision=precision, device="cuda")
            seconds = median_seconds(lambda r=r: r(x, mask), args.repeats, cuda=True)
            print(f"{torch.cuda.get_device_name()} {precision}: {seconds:.3f} s/image, {h * w / 1e6 / seconds:.3f} MP/s")
    time_attention(net, mask, direct=not args.no_direct)


if __name__ == "__main__":
    main()
