"""Uformer (Wang et al., CVPR 2022): the U-shaped window-attention transformer.

The window-attention blocks it shares with TAPE-R live in :mod:`restore.archs.window_attention`.

``REGISTRY``: this method's registry names (see :mod:`restore.methods`).
"""

REGISTRY: dict[str, dict[str, str]] = {
    "arch": {"uformer": ".arch:Uformer", "uformer_t": ".arch:UformerT", "uformer_s": ".arch:UformerS", "uformer_b": ".arch:UformerB"},
}
