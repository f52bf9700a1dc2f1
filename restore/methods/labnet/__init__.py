"""LAB-Net (Yang et al., 2022): shadow removal in OpenCV's 8-bit LAB space, with its
colour conversion, perceptual and gradient losses and LAB training step.

``REGISTRY``: this method's registry names (see :mod:`restore.methods`).
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {"labnet": ".arch:LABNet"},
    "loss": {"labnet_perceptual": ".loss:LabNetPerceptualLoss", "sobel_gradient": ".loss:SobelGradientLoss"},
    "train_step": {"labnet": ".step:LabSpaceStep"},
}
