"""TAPE (Liu et al., ECCV 2022): the task-agnostic prior embedding on a Uformer-style
restorer (TAPE-R) and its prior-learning step.

Importing this package loads nothing heavy: ``REGISTRY`` names this method's components
(``{kind: {name: ".module:attribute"}}``, relative to this package), and
:mod:`restore.registry` reads it the first time a name is looked up.
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {
        "tape_r": ".arch:TAPER",
        "tape_r_base": ".arch:TAPERBase",
    },
    "train_step": {
        "tape_prior": ".step:TapePriorStep",
    },
}
