"""Uformer (Wang et al., CVPR 2022): the U-shaped window-attention transformer.

The window-attention blocks it shares with TAPE-R live in :mod:`restore.archs.window_attention`.

Importing this package loads nothing heavy: ``REGISTRY`` names this method's components
(``{kind: {name: ".module:attribute"}}``, relative to this package), and
:mod:`restore.registry` reads it the first time a name is looked up.
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {
        "uformer": ".arch:Uformer",
        "uformer_t": ".arch:UformerT",
        "uformer_s": ".arch:UformerS",
        "uformer_b": ".arch:UformerB",
    },
}
