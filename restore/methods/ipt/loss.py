"""IPT's patch-level contrastive loss on the transformer's decoder features.

IPT pre-training (Chen et al., CVPR 2021, §3.2; ``shared/specs/ipt.md`` §6) adds
``lambda * L_contrastive`` (lambda = 0.1) to the per-task L1 so that the shared body learns
features that do not depend on the task: the decoder features of patches of the SAME image are
pulled together, the features of patches of DIFFERENT images in the batch pushed apart.

With ``f[j, i]`` the feature of patch (token) ``i`` of image ``j`` (B images, N patches each),
``d`` the cosine similarity and ``tau`` the temperature, the paper's loss is::

    l(j, i1, i2) = -log( exp(d(f[j,i1], f[j,i2]) / tau) / sum_{k != j} exp(d(f[j,i1], f[k,i2]) / tau) )
    L = 1 / (B N^2) * sum_j sum_i1 sum_i2 l(j, i1, i2)

i.e. every ordered pair of patches of one image is a positive pair (i1 = i2 included), and its
negatives are the patches at position ``i2`` of the other images of the batch. The denominator
does not contain the positive term (the paper's indicator ``k != j``); ``include_positive=True``
gives the InfoNCE form whose denominator sums over every image ``k``. The spec recalls the
paper's formula without re-verifying it and gives no temperature (see :data:`DEFAULT_TEMPERATURE`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Not given by the spec (nor, as recalled, by the paper); a common value for cosine-similarity
#: contrastive losses. A reconstruction: change it with ``temperature``.
DEFAULT_TEMPERATURE = 0.1
#: The paper's weight of the contrastive term (spec §6).
DEFAULT_WEIGHT = 0.1


def patch_contrastive_loss(
    features: Tensor, temperature: float = DEFAULT_TEMPERATURE, include_positive: bool = False
) -> Tensor:
    """IPT's contrastive loss of features ``(B, N, D)`` (B >= 2 images, N patches, D dims) -> scalar.

    Computed in float32 from the ``(B N) x (B N)`` cosine-similarity matrix, so memory grows as
    ``(B N)^2`` (B = 32 images of N = 256 tokens: 67 M entries, 268 MB, plus autograd's copies).
    """
    if features.dim() != 3:
        raise ValueError(f"features must be (B, N, D), got shape {tuple(features.shape)}")
    b, n, _ = features.shape
    if b < 2:
        raise ValueError("the contrastive loss needs at least 2 images in the batch (negatives are other images)")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    f = F.normalize(features.float(), dim=-1).reshape(b * n, -1)
    sim = (f @ f.T).view(b, n, b, n) / temperature  # [j, i1, k, i2]
    positive = torch.diagonal(sim, dim1=0, dim2=2).permute(2, 0, 1)  # [j, i1, i2] = sim[j, i1, j, i2]
    if not include_positive:
        same = torch.eye(b, dtype=torch.bool, device=sim.device).view(b, 1, b, 1)
        sim = sim.masked_fill(same, float("-inf"))
    denominator = torch.logsumexp(sim, dim=2)  # [j, i1, i2]
    return (denominator - positive).mean()


class PatchContrastiveLoss(nn.Module):
    """Module form of :func:`patch_contrastive_loss`: ``loss(features (B, N, D)) -> scalar``."""

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, include_positive: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            from restore.errors import ConfigError

            raise ConfigError(f"the contrastive temperature must be > 0, got {temperature}")
        self.temperature, self.include_positive = float(temperature), include_positive

    def forward(self, features: Tensor) -> Tensor:
        return patch_contrastive_loss(features, self.temperature, self.include_positive)
