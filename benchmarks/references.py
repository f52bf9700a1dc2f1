"""The official test procedures the speed benchmarks time restore against (imported, not rewritten).

The parity tests already transcribe each method's official procedure independently of restore's
engine; this module loads those transcriptions from ``tests/`` (tests never import benchmarks)
and puts each behind one call ``reference(x[, mask]) -> image in [0, 1]``:

* N2N UNet: the official validation padding (numpy ``reflect`` at the bottom and right to a
  square of a multiple of 32), the network, crop, clip (``tests/archs/test_n2n_unet.py`` states
  the rule; it is three lines, written here).
* Uformer: the official test script (``expand2square`` onto a centred zero canvas, the network,
  ``masked_select``, clamp) around the official network transcribed op for op on the state dict:
  ``(B, L, C)`` tokens, per-block shift masks, ``q*scale @ k^T + bias``, softmax, ``@ v``
  (``tests/methods/uformer/official.py``). An earlier version timed restore's own network with
  only its attention replaced; that reference got faster with every change to restore's blocks.
* WDNet: the independent re-implementation of the spec's forward (``tests/methods/wdnet``), with
  each block's dilated conv evaluated twice as the official ``DMDB2.forward`` does (spec 3.2; the
  parity tests evaluate it once, same values). Until this was added the reference skipped 1.06 of
  the official 17.09 G MACs at 256x256 (seven 64-channel 3x3 convs at 64x64).
* LAB-Net: the official network op for op and ``test.py`` around it (``tests/methods/labnet/official.py``).
* IPT: the transcribed official network (``RefIPT``, ``nn.MultiheadAttention`` sequence-first) and
  patch-wise procedure (``ref_chop``), with every tile forward the official ``forward_chop`` runs
  (main grid in batches of 64, then the top, left, bottom and right strips and the corner, no
  de-duplication); ``ref_chop`` assembles the result from those outputs.

Run from the repository root as ``python benchmarks/<script>.py`` (this folder is on sys.path).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def test_module(relative: str) -> ModuleType:
    """Import ``tests/<relative>`` by path (its helpers in tests/support on sys.path)."""
    name = "reference_" + relative.replace("/", "_").removesuffix(".py")
    if name in sys.modules:
        return sys.modules[name]
    support = str(TESTS / "support")
    if support not in sys.path:
        sys.path.insert(0, support)
    spec = importlib.util.spec_from_file_location(name, TESTS / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- N2N UNet


def n2n_reference(net: nn.Module) -> Callable[[Tensor], Tensor]:
    """Official N2N validation: reflect-pad (numpy) to a 32-multiple square, network, crop, clip."""

    def run(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        side = (max(h, w) + 31) // 32 * 32
        padded = np.pad(x[0].numpy(), [[0, 0], [0, side - h], [0, side - w]], "reflect")
        with torch.no_grad():
            return net(torch.from_numpy(padded)[None])[..., :h, :w].clamp(0, 1)

    return run


# --------------------------------------------------------------------------- Uformer


def uformer_reference(net: nn.Module) -> Callable[[Tensor], Tensor]:
    """The official test script around the transcribed official network, with ``net``'s weights
    (``net`` built with the default ``img_size`` 128, as every official test script builds it)."""
    official = test_module("methods/uformer/official.py")
    state = net.state_dict()

    def run(x: Tensor) -> Tensor:
        return official.official_test(lambda canvas: official.official_uformer(state, canvas), x)

    return run


# --------------------------------------------------------------------------- WDNet


def wdnet_reference(net: nn.Module, dilations: list[int] | None = None) -> Callable[[Tensor], Tensor]:
    """The spec's forward re-implemented in the WDNet tests (full-resolution script), clamped;
    ``dilations`` as the network was built with (default: the official ones)."""
    tests = test_module("methods/wdnet/test_arch.py")
    state, dilations = net.state_dict(), dilations or tests.OFFICIAL_DILATIONS

    def run(x: Tensor) -> Tensor:
        with torch.no_grad():
            return tests.ref_wdnet(x, state, dilations, deli_twice=True).clamp(0, 1)

    return run


# --------------------------------------------------------------------------- LAB-Net


def labnet_reference(net: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """LAB-Net's ``test.py`` around the official network, op for op: RGB in [0, 1] and raw mask
    (1, 1, H, W) in [0, 1] -> RGB in [0, 1] (8-bit codes / 255)."""
    official = test_module("methods/labnet/official.py")
    state, down = net.state_dict(), net.down_size[0]

    def run(x: Tensor, mask: Tensor) -> Tensor:
        rgb = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        m = (mask[0, 0] * 255).round().to(torch.uint8).numpy()
        out = official.official_test_image(state, rgb, m, down)
        return torch.from_numpy(out).permute(2, 0, 1)[None].float() / 255

    return run


# --------------------------------------------------------------------------- IPT


def ipt_reference(net: nn.Module, n_feats: int, heads: int, layers: int, batch: int = 64) -> Callable[[Tensor], Tensor]:
    """The official IPT test: the transcribed network (same weights as ``net``, built with the
    same ``n_feats``, ``heads``, ``layers``) fed every tile the official ``forward_chop`` runs, in
    its batches, then the transcribed assembly (``ref_chop``). Input/output in [0, 1]."""
    tests = test_module("methods/ipt/test_arch.py")
    scale = int(net.scale)
    ref = tests.RefIPT([scale], 1, n_feats=n_feats, heads=heads, layers=layers).eval()
    ref.load_state_dict(net.state_dict(), strict=True)
    patch, step = 48, 12

    def run(x: Tensor) -> Tensor:
        x255 = (x * 255).contiguous()
        h, w = x.shape[-2:]
        rows = list(range(0, h - patch + 1, step))
        cols = list(range(0, w - patch + 1, step))
        groups = [[(y, c) for y in rows for c in cols],  # main grid (F.unfold), batched
                  [(h - patch, c) for c in cols], [(y, w - patch) for y in rows],  # bottom, right strips
                  [(0, c) for c in cols], [(y, 0) for y in rows],  # top, left strips
                  [(h - patch, w - patch)]]  # corner
        outputs: dict[tuple[int, int], Tensor] = {}
        with torch.no_grad():
            for corners in groups:
                for first in range(0, len(corners), batch):
                    part = corners[first : first + batch]
                    tiles = torch.cat([x255[..., y : y + patch, c : c + patch] for y, c in part])
                    for corner, out in zip(part, ref(tiles)):
                        outputs.setdefault(corner, out)

            def lookup(tile: Tensor) -> Tensor:  # the tile's corner from its offset into x255
                return outputs[divmod(tile.storage_offset(), w)][None]

            return (tests.ref_chop(lookup, x255, scale, patch) / 255).clamp(0, 1)

    return run
