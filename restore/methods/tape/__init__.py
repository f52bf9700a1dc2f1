"""TAPE (Liu et al., ECCV 2022): the task-agnostic prior embedding on a Uformer-style
restorer (TAPE-R) and its prior-learning step.

``REGISTRY``: this method's registry names (see :mod:`restore.methods`).
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {"tape_r": ".arch:TAPER", "tape_r_base": ".arch:TAPERBase"},
    "train_step": {"tape_prior": ".step:TapePriorStep"},
}
