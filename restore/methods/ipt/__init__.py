"""IPT (Chen et al., CVPR 2021): the multi-head, multi-tail image-processing transformer,
its patch-wise inference, contrastive loss and multi-task pre-training step.

``REGISTRY``: this method's registry names (see :mod:`restore.methods`).
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {"ipt": ".arch:IPT"},
    "train_step": {"ipt_pretrain": ".step:IPTPretrainStep"},
}
