"""IPT (Chen et al., CVPR 2021): the multi-head, multi-tail image-processing transformer,
its patch-wise inference, contrastive loss and multi-task pre-training step.

Importing this package loads nothing heavy: ``REGISTRY`` names this method's components
(``{kind: {name: ".module:attribute"}}``, relative to this package), and
:mod:`restore.registry` reads it the first time a name is looked up.
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {
        "ipt": ".arch:IPT",
    },
    "train_step": {
        "ipt_pretrain": ".step:IPTPretrainStep",
    },
}
