"""The upsampler family: transposed convolution two ways, resize-convolutions and sub-pixel convolution.

Every upsampler is built through :func:`build_upsampler` and registered in :data:`UPSAMPLERS`.
"""

from upseg.upsample import pixelshuffle, resize, transpose  # noqa: F401  (importing registers the upsamplers)
from upseg.upsample.direct import DirectConvTranspose2d
from upseg.upsample.functional import conv_transpose2d_direct
from upseg.upsample.registry import UPSAMPLERS, build_upsampler

__all__ = ["UPSAMPLERS", "DirectConvTranspose2d", "build_upsampler", "conv_transpose2d_direct"]
