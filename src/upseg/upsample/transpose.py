"""``transpose``: the learned transposed-convolution upsampler, ``nn.ConvTranspose2d``.

It maps ``N×C_in×H×W`` → ``N×C_out×sH×sW`` with kernel ``k = 2s − s mod 2``, stride ``s`` and padding
``p = (k − s) // 2`` — Caffe/FCN's choice, for which ``(H−1)·s − 2p + k = s·H`` exactly and each output pixel sees
the same number of taps. Another ``kernel_size`` gets the padding and output padding that keep the size ``s·H``.
``init="bilinear"`` sets the kernel to bilinear interpolation (FCN), channel ``i`` → channel ``i``
(:mod:`upseg.upsample.ops.transpose_geometry`). ``direct`` (:mod:`upseg.upsample.direct`) is the same layer computed
as an ordinary convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from upseg.upsample.ops.transpose_geometry import bilinear_kernel, transpose_geometry
from upseg.upsample.registry import register_upsampler


@register_upsampler("transpose")
class TransposeUpsampler(nn.Module):
    """``nn.ConvTranspose2d(C_in, C_out, k, stride=s, padding=p)``: ``N×C_in×H×W`` → ``N×C_out×sH×sW``."""

    conv_class: type[nn.Module] = nn.ConvTranspose2d

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        kernel_size: int | None = None,
        init: str = "default",
        bias: bool = True,
    ) -> None:
        super().__init__()
        kernel, padding, output_padding = transpose_geometry(scale_factor, kernel_size)
        self.conv = self.conv_class(
            in_channels,
            out_channels,
            kernel,
            stride=scale_factor,
            padding=padding,
            output_padding=output_padding,
            bias=bias,
        )
        if init == "bilinear":
            self.init_bilinear()
        elif init != "default":
            raise ValueError(f'init must be "default" or "bilinear", got {init!r}')

    @torch.no_grad()
    def init_bilinear(self) -> None:
        """Channel ``i`` → channel ``i`` through a bilinear kernel (for ``i < min(C_in, C_out)``), zeros elsewhere."""
        weight = self.conv.weight
        weight.zero_()
        kernel = bilinear_kernel(weight.shape[-1], weight.dtype).to(weight.device)
        channels = torch.arange(min(weight.shape[0], weight.shape[1]))
        weight[channels, channels] = kernel
        if self.conv.bias is not None:
            self.conv.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)
