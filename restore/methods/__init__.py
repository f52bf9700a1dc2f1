"""One folder per method: its architecture, its own losses, its training step and its
registrations (``REGISTRY`` in the folder's ``__init__.py``), found by :mod:`restore.registry`
without being listed anywhere else. :mod:`restore.methods.step` is the training-step contract
they share with the engine.
"""
