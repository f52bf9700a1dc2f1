"""WDNet (Liu et al., ECCV 2020): wavelet-domain demoireing with dense and dilation
branches, its Haar packet transform and its wavelet losses; ``wdnet_slim`` is its slimmable
(DDA) version.

``REGISTRY``: this method's registry names (see :mod:`restore.methods`).
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {"wdnet": ".arch:WDNet", "wdnet_slim": ".slim:SlimWDNet"},
    "loss": {"wavelet_l1": ".loss:WaveletL1Loss", "wavelet_texture": ".loss:WaveletTextureLoss"},
}
