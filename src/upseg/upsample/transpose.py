"""Learned transposed-convolution upsamplers: ``transpose`` (nn.ConvTranspose2d) and ``direct`` (ours).

Both map ``N×C_in×H×W`` → ``N×C_out×sH×sW`` with kernel ``k = 2s − s mod 2``, stride ``s`` and padding
``p = (k − s) // 2`` — Caffe/FCN's choice, for which ``(H−1)·s − 2p + k = s·H`` exactly and each output pixel sees
the same number of taps. Another ``kernel_size`` gets the padding and output padding that keep the size ``s·H``.
``init="bilinear"`` sets the kernel to bilinear interpolation (FCN), channel ``i`` → channel ``i``. ``direct`` also
takes ``impl`` (``"subpixel"`` or ``"zero_insertion"``), which changes the speed, never the state dict or the output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from upseg.upsample.direct import DirectConvTranspose2d
from upseg.upsample.functional import DEFAULT_IMPL, validate_impl
from upseg.upsample.registry import register_upsampler


def bilinear_kernel(kernel_size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``k×k`` bilinear interpolation kernel (FCN's ``upsample_filt``): ``(1 − |x/f − c|)(1 − |y/f − c|)``.

    ``f = ceil(k/2)``, ``c = (2f − 1 − f mod 2) / 2f``. With stride ``s``, ``k = 2s − s mod 2`` and padding
    ``(k − s) // 2`` a transposed convolution with it equals ``F.interpolate(..., mode="bilinear",
    align_corners=False)`` away from the borders.
    """
    factor = (kernel_size + 1) // 2
    center = (2 * factor - 1 - factor % 2) / (2 * factor)
    og = torch.arange(kernel_size, dtype=torch.float64) / factor
    filt = 1 - (og - center).abs()
    return torch.outer(filt, filt).to(dtype)


def transpose_geometry(scale_factor: int, kernel_size: int | None) -> tuple[int, int, int]:
    """``(kernel_size, padding, output_padding)`` for which a stride-``s`` transposed conv gives exactly ``s·H``."""
    kernel = 2 * scale_factor - scale_factor % 2 if kernel_size is None else kernel_size
    if kernel < 1:
        raise ValueError(f"kernel_size must be positive, got {kernel}")
    # Need k + op − 2p = s with p ≥ 0 and 0 ≤ op < s.
    excess = kernel - scale_factor
    if excess >= 0:
        padding, output_padding = (excess + 1) // 2, excess % 2
    else:
        padding, output_padding = 0, -excess
    if output_padding >= scale_factor:
        raise ValueError(
            f"kernel_size={kernel} cannot upsample by exactly {scale_factor}: pick a kernel of the same parity as "
            f"the scale factor, or any kernel when scale_factor > 1"
        )
    return kernel, padding, output_padding


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


@register_upsampler("direct")
class DirectUpsampler(TransposeUpsampler):
    """``transpose`` computed by :class:`DirectConvTranspose2d`, plus option ``impl``: same state dict and output."""

    conv_class = DirectConvTranspose2d

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        kernel_size: int | None = None,
        init: str = "default",
        bias: bool = True,
        impl: str = DEFAULT_IMPL,
    ) -> None:
        validate_impl(impl)  # before building, so a bad name fails fast
        super().__init__(in_channels, out_channels, scale_factor, kernel_size=kernel_size, init=init, bias=bias)
        self.conv.impl = impl
