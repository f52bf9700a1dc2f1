"""Datasets and image I/O.

Deliberately empty of imports: ``import restore.data`` must not pull in OpenCV, SciPy or
torch. Modules are loaded by name through :mod:`restore.registry` (``paired_folder``,
``synthetic_noise``, ``noisy_folder``, ``shadow_folder``, ``sidd_blocks``) or imported directly
(``restore.data.image_io``, ``restore.data.noise``, ...).
"""
