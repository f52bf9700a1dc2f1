"""Neighbor2Neighbor (Huang et al., CVPR 2021): self-supervised denoising from single
noisy images -- the neighbour sub-sampler, its regularised loss and training step. The
network is the generic :mod:`restore.archs.n2n_unet` (also used by the supervised baselines).

``REGISTRY``: this method's registry names (see :mod:`restore.methods`).
"""

REGISTRY: dict[str, dict[str, str]] = {
    "train_step": {"neighbor2neighbor": ".step:Neighbor2NeighborStep"},
}
