"""LAB-Net (Yang et al., 2022): shadow removal in OpenCV's 8-bit LAB space, with its
colour conversion, perceptual and gradient losses and LAB training step.

Importing this package loads nothing heavy: ``REGISTRY`` names this method's components
(``{kind: {name: ".module:attribute"}}``, relative to this package), and
:mod:`restore.registry` reads it the first time a name is looked up.
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {
        "labnet": ".arch:LABNet",
    },
    "loss": {
        "labnet_perceptual": ".loss:LabNetPerceptualLoss",
        "sobel_gradient": ".loss:SobelGradientLoss",
    },
    "train_step": {
        "labnet": ".step:LabSpaceStep",
    },
}
