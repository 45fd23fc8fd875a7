"""The resize-convolution upsampler base (Odena et al., 2016): a fixed interpolation, then a learned convolution.

``N×C_in×H×W`` → interpolate by ``s`` → ``N×C_in×sH×sW`` → ``conv2d(k, padding=k//2)`` → ``N×C_out×sH×sW``.
The fixed resize spreads every input pixel over all ``s×s`` output phases alike, so no checkerboard can arise.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from upseg.upsample.ops.options import odd_kernel


class ResizeConvUpsampler(nn.Module):
    """Interpolate by ``scale_factor`` with ``mode``, then ``Conv2d(C_in, C_out, k, padding=k//2)``."""

    mode: str = "bilinear"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        kernel_size: int = 3,
        bias: bool = True,
    ) -> None:
        super().__init__()
        odd_kernel("kernel_size", kernel_size)
        self.scale_factor = scale_factor
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2] * self.scale_factor, x.shape[-1] * self.scale_factor)
        align = {"align_corners": False} if self.mode == "bilinear" else {}
        return self.conv(F.interpolate(x, size=size, mode=self.mode, **align))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, scale_factor={self.scale_factor}"
