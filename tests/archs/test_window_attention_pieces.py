"""Large maps in inference run the masked attention and the LeFF in pieces of PIECE_BYTES:
the result equals the one-piece computation (and the training-mode one)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lewin_blocks import small_lewin_block

from restore.archs import window_attention


@pytest.mark.parametrize("shift", [False, True])
def test_block_in_pieces_equals_the_block_in_one_piece(monkeypatch: pytest.MonkeyPatch, shift: bool) -> None:
    blk = small_lewin_block(shift, seed=3)
    x = torch.randn(2, 20, 12, 8)  # two images of 5 x 3 windows: pieces cross from one image to the next
    with torch.no_grad():
        whole = blk(x)
    expected = blk(x).detach()  # with gradients: the plain one-piece path
    torch.testing.assert_close(whole, expected, atol=1e-5, rtol=1e-5)

    calls = {"sdpa": 0, "bands": 0}
    sdpa, band = F.scaled_dot_product_attention, window_attention.LeFF._band

    def counting_sdpa(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["sdpa"] += 1
        return sdpa(*args, **kwargs)

    def counting_band(self, *args):  # noqa: ANN001, ANN002, ANN202
        calls["bands"] += 1
        return band(self, *args)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting_sdpa)
    monkeypatch.setattr(window_attention.LeFF, "_band", counting_band)
    # 7 windows x 2 heads x 16 x 16 floats per attention piece; 4 rows of 2 x 12 x 32 hidden floats per band
    monkeypatch.setattr(window_attention, "PIECE_BYTES", 7 * 2 * 16 * 16 * 4)
    assert 4 * (2 * 12 * 32 * 4) <= window_attention.PIECE_BYTES < 5 * (2 * 12 * 32 * 4)
    with torch.no_grad():
        pieces = blk(x)
    assert calls == {"sdpa": 5 if shift else 1, "bands": 5}  # 30 windows in 7s; 20 rows in 4s
    torch.testing.assert_close(pieces, whole, atol=1e-6, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shapes read as numbers: the export silences them too
def test_a_traced_block_is_one_piece_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX export traces the block once for all sizes: no piece loop of the example's size in it."""
    blk = small_lewin_block(True, seed=4, modulator=False)
    monkeypatch.setattr(window_attention, "PIECE_BYTES", 2 * 16 * 16 * 4)  # one window per piece
    with torch.no_grad():
        traced = torch.jit.trace(blk, torch.randn(1, 16, 16, 8), check_trace=False)
        graph = str(traced.inlined_graph)
        assert graph.count("scaled_dot_product_attention") == 1 and graph.count("aten::linear") == 5
        other = torch.randn(1, 8, 12, 8)
        torch.testing.assert_close(traced(other), blk(other), atol=1e-5, rtol=1e-5)
