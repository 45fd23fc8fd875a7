"""The channel projection of the content-aware upsamplers, which keep the channel count by nature.

``N×C_in×H×W`` → ``N×C_out×H×W``: a 1×1 convolution, or the identity when ``C_in = C_out``. They apply it to their
input, at the low resolution: reassembly (CARAFE, FADE) and point sampling with one group (DySample) take linear
combinations of pixels with weights shared by every channel, so they commute with a 1×1 convolution, and before the
upsampling it costs ``s²`` times fewer multiply-adds than after. Only its bias differs near a CARAFE border, where
taps that fall outside the image are zeros and the weights sum to less than one.
"""

from __future__ import annotations

from torch import nn


def channel_projection(in_channels: int, out_channels: int) -> nn.Module:
    """``Conv2d(C_in, C_out, 1)``, or ``nn.Identity()`` when the counts already agree."""
    if in_channels == out_channels:
        return nn.Identity()
    return nn.Conv2d(in_channels, out_channels, 1)
