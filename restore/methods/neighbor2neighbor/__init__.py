"""Neighbor2Neighbor (Huang et al., CVPR 2021): self-supervised denoising from single
noisy images -- the neighbour sub-sampler, its regularised loss and training step. The
network is the generic :mod:`restore.archs.n2n_unet` (also used by the supervised baselines).

Importing this package loads nothing heavy: ``REGISTRY`` names this method's components
(``{kind: {name: ".module:attribute"}}``, relative to this package), and
:mod:`restore.registry` reads it the first time a name is looked up.
"""

REGISTRY: dict[str, dict[str, str]] = {
    "train_step": {
        "neighbor2neighbor": ".step:Neighbor2NeighborStep",
    },
}
