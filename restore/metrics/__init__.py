"""Image-quality metrics and the published evaluation protocols.

Tiny public API::

    from restore.metrics import psnr, ssim, Evaluator, PROTOCOLS, get_protocol, register_metric

``psnr``/``ssim`` are batched float64 torch functions; :class:`Evaluator` scores batches under a
named protocol from :data:`PROTOCOLS` (see ``restore/metrics/protocols.py``); every metric, its
direction and its keys are one entry of the metric table (``restore/metrics/table.py``), where
:func:`register_metric` adds a user metric. Importing this package imports torch only:
lpips/torchvision/skimage/cv2 are loaded lazily where needed, and no global state is changed.
"""

from restore.metrics.evaluator import Evaluator, format_table
from restore.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol
from restore.metrics.psnr import psnr
from restore.metrics.ssim import ssim
from restore.metrics.table import Metric, get_metric, metric_names, register_metric, registered_metric

__all__ = [
    "DEFAULT_PROTOCOL", "PROTOCOLS", "Evaluator", "Metric", "Protocol", "format_table", "get_metric", "get_protocol",
    "metric_names", "psnr", "register_metric", "registered_metric", "ssim",
]
