"""``bilinear``: bilinear resize by ``s``, then a learned ``Conv2d(k, padding=k//2)`` (resize-convolution, Odena et
al., 2016; :class:`~upseg.upsample.ops.resize_conv.ResizeConvUpsampler`).

``N×C_in×H×W`` → bilinear resize → ``N×C_in×sH×sW`` → convolution → ``N×C_out×sH×sW``. ``align_corners=False``:
output pixel centres sit where they fall on the input's pixel grid.
"""

from __future__ import annotations

from upseg.upsample.ops.resize_conv import ResizeConvUpsampler
from upseg.upsample.registry import register_upsampler


@register_upsampler("bilinear")
class BilinearUpsampler(ResizeConvUpsampler):
    """Bilinear resize (``align_corners=False``) then convolution."""

    mode = "bilinear"
