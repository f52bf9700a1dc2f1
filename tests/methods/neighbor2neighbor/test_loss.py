"""The random neighbour sub-sampler and the N2N objective (neighbor2neighbor.md §4, §6)."""

from __future__ import annotations

import pytest
import torch

from restore.methods.neighbor2neighbor.loss import PAIRS, NeighborSubsampler, neighbor2neighbor_loss


def coordinates(n: int, c: int, h: int, w: int) -> torch.Tensor:
    """A batch whose every value encodes (sample, channel, row, col), so sources can be read back."""
    b, ch, r, q = torch.meshgrid(torch.arange(n), torch.arange(c), torch.arange(h), torch.arange(w), indexing="ij")
    return (((b * c + ch) * h + r) * w + q).double()


def decode(v: torch.Tensor, c: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
    v = v.long()
    col, v = v % w, v // w
    row, v = v % h, v // h
    ch, b = v % c, v // c
    return b, ch, row, col


def test_every_output_pixel_comes_from_its_own_cell_and_sample_and_channel():
    n, c, h, w = 3, 2, 8, 12
    x = coordinates(n, c, h, w)
    sub = NeighborSubsampler.like(x, torch.Generator().manual_seed(0))
    for g in sub(x):
        assert g.shape == (n, c, h // 2, w // 2)
        b, ch, row, col = decode(g, c, h, w)
        nn_, cc, ii, jj = torch.meshgrid(*(torch.arange(s) for s in g.shape), indexing="ij")
        assert torch.equal(b, nn_) and torch.equal(ch, cc)
        assert torch.equal(row // 2, ii) and torch.equal(col // 2, jj)


def test_the_two_sub_images_take_adjacent_never_equal_never_diagonal_pixels():
    n, c, h, w = 4, 3, 16, 16
    x = coordinates(n, c, h, w)
    g1, g2 = NeighborSubsampler.like(x, torch.Generator().manual_seed(1))(x)
    _, _, r1, c1 = decode(g1, c, h, w)
    _, _, r2, c2 = decode(g2, c, h, w)
    assert bool((g1 != g2).all())
    assert torch.equal((r1 - r2).abs() + (c1 - c2).abs(), torch.ones_like(r1))  # 4-neighbours only


def test_one_choice_per_cell_shared_by_all_channels():
    n, c, h, w = 2, 5, 6, 6
    x = coordinates(n, c, h, w)
    g1, _ = NeighborSubsampler.like(x, torch.Generator().manual_seed(2))(x)
    _, _, rows, cols = decode(g1, c, h, w)
    assert bool((rows == rows[:, :1]).all()) and bool((cols == cols[:, :1]).all())


def test_pattern_is_random_per_sample_per_cell_and_per_draw_with_uniform_pairs():
    gen = torch.Generator().manual_seed(3)
    a = NeighborSubsampler(8, 64, 64, generator=gen).choice
    b = NeighborSubsampler(8, 64, 64, generator=gen).choice
    assert not torch.equal(a, b)
    assert all(not torch.equal(a[0], a[i]) for i in range(1, 8))  # differs between samples
    counts = torch.bincount(a.flatten(), minlength=8).double()
    expected = a.numel() / 8
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24.3  # 7 degrees of freedom, p = 0.001


def test_draw_matches_the_official_single_randint_in_row_major_cell_order():
    n, h, w = 2, 6, 10
    sub = NeighborSubsampler(n, h, w, generator=torch.Generator().manual_seed(4))
    draws = torch.randint(0, 8, (n * (h // 2) * (w // 2),), generator=torch.Generator().manual_seed(4))
    assert torch.equal(sub.choice.flatten(), draws)
    # and each draw k selects the ordered pair PAIRS[k] = (first, second) of the cell positions
    x = coordinates(n, 1, h, w)
    g1, g2 = sub(x)
    for (b, i, j), k in zip(torch.cartesian_prod(torch.arange(n), torch.arange(h // 2), torch.arange(w // 2)), draws):
        cell = [x[b, 0, 2 * i + dr, 2 * j + dc] for dr in (0, 1) for dc in (0, 1)]  # 0 TL, 1 TR, 2 BL, 3 BR
        first, second = PAIRS[int(k)]
        assert g1[b, 0, i, j] == cell[first] and g2[b, 0, i, j] == cell[second]


def test_pairs_are_the_eight_ordered_adjacent_pairs():
    adjacent = {(0, 1), (0, 2), (1, 3), (2, 3)}
    assert len(set(PAIRS)) == 8
    assert set(PAIRS) == adjacent | {(b, a) for a, b in adjacent}


def test_odd_sizes_and_mismatched_tensors_are_refused():
    with pytest.raises(ValueError, match="even"):
        NeighborSubsampler(1, 5, 4)
    sub = NeighborSubsampler(1, 4, 4)
    with pytest.raises(ValueError, match="drawn for"):
        sub(torch.zeros(1, 3, 6, 4))


def test_loss_is_the_papers_formula():
    gen = torch.Generator().manual_seed(5)
    out, tgt, exp_diff = (torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    total, rec, reg = neighbor2neighbor_loss(out, tgt, exp_diff, gamma=0.7, lambda1=1.5, lambda2=0.25)
    n = out.numel()
    rec_ref = sum(float(v) ** 2 for v in (out - tgt).flatten()) / n
    reg_ref = sum(float(v) ** 2 for v in (out - tgt - exp_diff).flatten()) / n
    assert float(rec) == pytest.approx(rec_ref, rel=1e-12)
    assert float(reg) == pytest.approx(reg_ref, rel=1e-12)
    assert float(total) == pytest.approx(1.5 * rec_ref + 0.25 * 0.7 * reg_ref, rel=1e-12)
