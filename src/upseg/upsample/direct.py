"""``direct``: the transposed convolution of ``transpose`` computed as an ordinary (direct) convolution.

``N×C_in×H×W`` → ``N×C_out×sH×sW`` with the kernel, padding and initialisation of ``transpose``
(:mod:`upseg.upsample.transpose`), computed by
:class:`~upseg.upsample.ops.direct_conv_transpose2d.DirectConvTranspose2d`: zero insertion, padding ``d·(k−1)−p``,
the kernel rotated 180° with in/out swapped — or its polyphase form, which skips the inserted zeros. Same
parameters, state dict, outputs and gradients as ``transpose``. Option ``impl`` (``"subpixel"``, the polyphase form,
or ``"zero_insertion"``, the literal recipe) changes the speed, never the state dict or the output.
"""

from __future__ import annotations

from upseg.upsample.ops.direct_conv import DEFAULT_IMPL, validate_impl
from upseg.upsample.ops.direct_conv_transpose2d import DirectConvTranspose2d
from upseg.upsample.registry import register_upsampler
from upseg.upsample.transpose import TransposeUpsampler


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
