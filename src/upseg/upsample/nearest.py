"""``nearest``: nearest-neighbour resize by ``s``, then a learned ``Conv2d(k, padding=k//2)`` (resize-convolution,
Odena et al., 2016; :class:`~upseg.upsample.ops.resize_conv.ResizeConvUpsampler`).

``N×C_in×H×W`` → nearest resize → ``N×C_in×sH×sW`` → convolution → ``N×C_out×sH×sW``. Every input pixel is repeated
``s×s`` times before the convolution.
"""

from __future__ import annotations

from upseg.upsample.ops.resize_conv import ResizeConvUpsampler
from upseg.upsample.registry import register_upsampler


@register_upsampler("nearest")
class NearestUpsampler(ResizeConvUpsampler):
    """Nearest-neighbour resize then convolution."""

    mode = "nearest"
