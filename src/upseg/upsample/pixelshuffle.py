"""Sub-pixel convolution upsampler (Shi et al., 2016) with ICNR initialisation (Aitken et al., 2017).

``N×C_in×H×W`` → ``conv2d(k, padding=k//2)`` → ``N×(C_out·s²)×H×W`` → ``pixel_shuffle(s)`` → ``N×C_out×sH×sW``.
Output channel ``c`` at sub-pixel phase ``(i, j)`` comes from conv channel ``c·s² + i·s + j``. ICNR gives all ``s²``
conv channels of each ``c`` the same kernel, so at initialisation the layer is a convolution followed by
nearest-neighbour upsampling: every phase equal, no checkerboard.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from upseg.upsample.ops.options import odd_kernel
from upseg.upsample.registry import register_upsampler


@torch.no_grad()
def icnr_(weight: Tensor, scale_factor: int, initializer=nn.init.kaiming_normal_) -> Tensor:
    """Fill ``weight`` (``C_out·s²×C_in×k×k``) in place so that the ``s²`` phases of each output channel share one
    kernel drawn by ``initializer`` for a ``C_out×C_in×k×k`` convolution."""
    phases = scale_factor**2
    if weight.shape[0] % phases:
        raise ValueError(f"weight has {weight.shape[0]} output channels, not a multiple of scale_factor² = {phases}")
    sub_kernel = torch.empty(weight.shape[0] // phases, *weight.shape[1:], dtype=weight.dtype, device=weight.device)
    initializer(sub_kernel)
    weight.copy_(sub_kernel.repeat_interleave(phases, dim=0))
    return weight


@register_upsampler("pixelshuffle")
class PixelShuffleUpsampler(nn.Module):
    """``Conv2d(C_in, C_out·s², k, padding=k//2)`` then ``PixelShuffle(s)``; ``init`` is ``"icnr"`` or ``"default"``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        kernel_size: int = 3,
        init: str = "icnr",
        bias: bool = True,
    ) -> None:
        super().__init__()
        odd_kernel("kernel_size", kernel_size)
        phases = scale_factor**2
        self.conv = nn.Conv2d(in_channels, out_channels * phases, kernel_size, padding=kernel_size // 2, bias=bias)
        self.shuffle = nn.PixelShuffle(scale_factor)
        if init == "icnr":
            icnr_(self.conv.weight, scale_factor)
            if bias:
                with torch.no_grad():
                    self.conv.bias.copy_(self.conv.bias[::phases].repeat_interleave(phases))
        elif init != "default":
            raise ValueError(f'init must be "icnr" or "default", got {init!r}')

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.conv(x))
