"""restore against each method's official test procedure: speed and output difference (run by hand).

One row per architecture and backend at the README sizes (N2N UNet 512x512, Uformer-T and
Uformer-B 256x256, WDNet 256x256, LAB-Net 640x480 with a real shadow mask, IPT sigma-30 96x96),
random weights shared by both sides, the same input. The reference is the official procedure as
the parity tests transcribe it (:mod:`references`); restore's side is
``Restorer.from_options(model, Infer(backend=..., precision=...))``, the object ``restore infer``
and ``restore test`` use, on a copy of the network prepared as ``restore infer`` prepares it
(``prepare_for_inference``: the architecture's declared ``channels_last`` default).
Reference and restore are timed interleaved in one process (one untimed call each first,
which also builds an exported graph), median of ``--repeats``. Columns:
milliseconds of each, megapixels per second of restore (input pixels), restore / reference, and
the max abs difference of the outputs (images in [0, 1]).

A backend this checkout's ``Infer`` does not know (``infer.backend`` arrives with the backends
work), or whose extra is not installed, is skipped with a note instead of failing the table.

Whole processes (``--processes``): ``restore infer`` over a folder of 24 Kodak-size images
(``../shared/data/kodak24``) against a script running the official N2N validation loop over the
same folder (``official_n2n_folder.py``), same random weights; wall time, user and system CPU and
peak RSS of each process (``os.wait4``), median of ``--repeats``, interleaved. Page-fault churn and
start-up costs are process-level effects that an in-process comparison would share.

    python benchmarks/vs_reference.py [--models n2n uformer_t ...] [--backends torch onnxruntime openvino]
                                      [--precision fp32] [--repeats 3] [--threads N] [--quick]
    python benchmarks/vs_reference.py --processes [--repeats 3] [--backends torch ...]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import references
import torch
from timing import interleaved
from torch import Tensor, nn

from restore.config.schema import Infer
from restore.engine.inference import Restorer
from restore.engine.torch_speed import prepare_for_inference

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout, or $RESTORE_SHARED_DATA (as the tests)
SHARED = Path(os.environ.get("RESTORE_SHARED_DATA") or ROOT.parent / "shared" / "data")


@dataclass
class Case:
    """One architecture: its network, the official procedure on the same weights, its inputs."""

    label: str
    build: Callable[[bool], nn.Module]
    reference: Callable[[nn.Module, bool], Callable[..., Tensor]]
    inputs: Callable[[bool], tuple[Tensor, ...]]

    def setup(self, quick: bool) -> tuple[nn.Module, tuple[Tensor, ...]]:
        """The network (seeded, eval mode) and its inputs, as every table built on these cases takes them."""
        torch.manual_seed(0)
        return self.build(quick).eval(), self.inputs(quick)


def photo(h: int, w: int, sigma: float = 0.0, seed: int = 0) -> Tensor:
    """A crop of kodim01 (random values without the shared data), optionally with Gaussian noise."""
    path = SHARED / "kodak24" / "kodim01.png"
    g = torch.Generator().manual_seed(seed)
    if path.is_file():
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)[:h, :w]
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
    else:
        x = torch.rand(1, 3, h, w, generator=g)
    if sigma:
        x = (x + torch.randn(x.shape, generator=g) * sigma / 255).clamp(0, 1)
    return (x * 255).round() / 255  # 8-bit values, as read from files


def shadow_inputs(quick: bool) -> tuple[Tensor, Tensor]:
    """USR_1 with its mask at 640x480 (an ellipse on a random image without the shared data)."""
    h, w = (80, 96) if quick else (480, 640)
    image, mask = SHARED / "shadow" / "images" / "USR_1.jpg", SHARED / "shadow" / "masks" / "USR_1.png"
    if image.is_file() and mask.is_file():
        rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(image)), (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        m = cv2.resize(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE), (w, h), interpolation=cv2.INTER_NEAREST)
    else:
        rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (w // 2, h // 2), (w // 4, h // 5), 0, 0, 360, 255, -1)
    return (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255,
            torch.from_numpy(m)[None, None].float() / 255)


def randomized(net: nn.Module, std: float = 0.05) -> nn.Module:
    """Random weights (WDNet's official init is nearly the identity)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net


def cases() -> dict[str, Case]:
    from restore.archs.n2n_unet import N2NUNet
    from restore.methods.ipt.arch import IPT
    from restore.methods.labnet.arch import LABNet
    from restore.methods.uformer.arch import Uformer, UformerB, UformerT
    from restore.methods.wdnet.arch import WDNet

    tiny_uformer = {"embed_dim": 8, "depths": [1] * 9, "win_size": 8, "modulator": True, "drop_path_rate": 0.0}
    ipt_dims = {False: (64, 12, 12), True: (4, 4, 1)}  # n_feats, heads, layers
    return {
        "n2n": Case("N2N UNet", lambda q: N2NUNet(n_feature=8 if q else 48, pad_square=True),
                    lambda net, q: references.n2n_reference(net), lambda q: (photo(*(64, 64) if q else (512, 512), sigma=25),)),
        "uformer_t": Case("Uformer-T", lambda q: Uformer(**tiny_uformer) if q else UformerT(),
                          lambda net, q: references.uformer_reference(net), lambda q: (photo(*(64, 64) if q else (256, 256), sigma=25),)),
        "uformer_b": Case("Uformer-B", lambda q: Uformer(**tiny_uformer) if q else UformerB(),
                          lambda net, q: references.uformer_reference(net), lambda q: (photo(*(64, 64) if q else (256, 256), sigma=25),)),
        "wdnet": Case("WDNet", lambda q: randomized(WDNet(channels=16, growth=8, dilations=[1, 3]) if q else WDNet()),
                      lambda net, q: references.wdnet_reference(net, [1, 3] if q else None), lambda q: (photo(*(64, 64) if q else (256, 256)),)),  # noqa: E501
        "labnet": Case("LAB-Net", lambda q: LABNet(channels=8, down_size=32) if q else LABNet(),
                       lambda net, q: references.labnet_reference(net), shadow_inputs),
        "ipt": Case("IPT sigma30", lambda q: IPT(scale=1, n_feats=ipt_dims[q][0], num_heads=ipt_dims[q][1],
                                                  num_layers=ipt_dims[q][2]),
                    lambda net, q: references.ipt_reference(net, *ipt_dims[q]),
                    lambda q: (photo(*(60, 60) if q else (96, 96), sigma=30),)),
    }


def restorer_for(model: nn.Module, backend: str, precision: str) -> Restorer | str:
    """``Restorer.from_options`` with this backend and precision, or the reason it is unavailable;
    backend ``torch+compile`` is the torch backend with ``infer.compile: true``."""
    fields = {f.name for f in dataclasses.fields(Infer)}
    compiled = backend == "torch+compile"
    backend = "torch" if compiled else backend
    wanted = {"backend": backend, "precision": precision, **({"compile": True} if compiled else {})}
    missing = [k for k, v in wanted.items() if k not in fields and (k, v) not in (("backend", "torch"), ("precision", "fp32"))]
    if missing:
        return f"infer.{' and infer.'.join(missing)} not in this checkout"
    infer = Infer(**{k: v for k, v in wanted.items() if k in fields})
    try:
        # restore's own copy, prepared as `restore infer` prepares it (the architecture's declared
        # channels_last default); the reference keeps the untouched module
        own = prepare_for_inference(copy.deepcopy(model).eval(), infer, torch.device("cpu"))
        return Restorer.from_options(own, infer, "cpu")
    except Exception as exc:  # noqa: BLE001 - a missing extra, an unknown value: the row is skipped, the table goes on
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


def in_process(args: argparse.Namespace) -> None:
    table = cases()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 reference, "
          f"median of {args.repeats} interleaved{' (quick: tiny networks and sizes)' if args.quick else ''}")
    print("| model | input | backend | precision | reference ms | restore ms | restore MP/s | restore / reference | max abs diff |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        case = table[name]
        model, inputs = case.setup(args.quick)
        reference = case.reference(model, args.quick)
        size = "x".join(map(str, inputs[0].shape[-2:][::-1])) + (" + mask" if len(inputs) > 1 else "")
        for backend in args.backends:
            restorer = restorer_for(model, backend, args.precision)
            if isinstance(restorer, str):
                print(f"| {case.label} | {size} | {backend} | {args.precision} | | | | | skipped: {restorer} |")
                continue
            seconds, out = interleaved({"reference": lambda f=reference, i=inputs: f(*i),
                                        "restore": lambda r=restorer, i=inputs: r(*i)}, args.repeats)
            diff = (out["restore"].clamp(0, 1) - out["reference"].clamp(0, 1)).abs().max().item()
            mp = inputs[0].shape[-2] * inputs[0].shape[-1] / 1e6
            print(f"| {case.label} | {size} | {backend} | {args.precision} | {seconds['reference'] * 1e3:.0f} | "
                  f"{seconds['restore'] * 1e3:.0f} | {mp / seconds['restore']:.3g} | "
                  f"{seconds['restore'] / seconds['reference']:.2f} | {diff:.1e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(cases()), choices=list(cases()))
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime", "openvino"],
                        choices=["torch", "torch+compile", "onnxruntime", "openvino"],
                        help="torch+compile: the torch backend with infer.compile (compile time not in the figures)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="tiny networks and sizes: checks the script, times nothing useful")
    parser.add_argument("--processes", action="store_true", help="whole processes over a Kodak folder instead")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.processes:
        from process_harness import compare_processes

        compare_processes(args.repeats, args.backends, args.quick)
    else:
        in_process(args)


if __name__ == "__main__":
    sys.exit(main())
