"""Image-quality metrics and the published evaluation protocols.

Tiny public API::

    from restore.metrics import psnr, ssim, Evaluator, PROTOCOLS, get_protocol

``psnr``/``ssim`` are batched float64 torch functions; :class:`Evaluator` scores batches under a
named protocol from :data:`PROTOCOLS` (see ``restore/metrics/protocols.py``). Importing this
package imports torch only: lpips/torchvision/skimage/cv2 are loaded lazily where needed, and no
global state is changed.
"""

from restore.metrics.evaluator import Evaluator, format_table
from restore.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol
from restore.metrics.psnr import psnr
from restore.metrics.ssim import ssim

__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "Evaluator", "Protocol", "format_table", "get_protocol", "psnr", "ssim"]
