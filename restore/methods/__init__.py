"""One folder per method: its architecture, its own losses, its training step and its
registrations.

A method folder's ``__init__.py`` holds only a docstring and ``REGISTRY``, a plain mapping
``{kind: {name: ".module:attribute"}}`` (targets relative to the folder). :mod:`restore.registry`
reads every folder's ``REGISTRY`` the first time a name is looked up, so a method is listed
nowhere else, and importing the folder loads nothing heavy. :mod:`restore.methods.step` is the
training-step contract the methods share with the engine.
"""
