"""WDNet (Liu et al., ECCV 2020): wavelet-domain demoireing with dense and dilation
branches, its Haar packet transform and its wavelet losses.

Importing this package loads nothing heavy: ``REGISTRY`` names this method's components
(``{kind: {name: ".module:attribute"}}``, relative to this package), and
:mod:`restore.registry` reads it the first time a name is looked up.
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {
        "wdnet": ".arch:WDNet",
    },
    "loss": {
        "wavelet_l1": ".loss:WaveletL1Loss",
        "wavelet_texture": ".loss:WaveletTextureLoss",
    },
}
