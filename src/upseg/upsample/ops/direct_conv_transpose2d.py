"""``DirectConvTranspose2d``: a drop-in ``nn.ConvTranspose2d`` whose forward is :func:`conv_transpose2d_direct`.

Parameters have ConvTranspose2d's names, shapes and initialisation — ``weight`` is ``C_in×(C_out/groups)×k_h×k_w``,
``bias`` is ``C_out`` — so a state dict loads either way and, seeded alike, both layers start from the same weights.
``N×C_in×H×W`` → ``N×C_out×H_out×W_out`` with ``H_out = (H−1)·s − 2p + d·(k−1) + op + 1``; ``output_size`` picks
``op`` as ConvTranspose2d does. ``impl`` picks how (``"subpixel"`` or ``"zero_insertion"``, see
:func:`conv_transpose2d_direct`); it is a plain attribute, not state, so it never enters the state dict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from upseg.upsample.ops.direct_conv import (
    DEFAULT_IMPL,
    IntOrPair,
    _pair,
    conv_transpose2d_direct,
    transposed_output_size,
    validate_impl,
)


class DirectConvTranspose2d(nn.Module):
    """Transposed convolution as one ordinary convolution, sub-pixel or zero-insertion (see module doc)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        output_padding: IntOrPair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntOrPair = 1,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        impl: str = DEFAULT_IMPL,
    ) -> None:
        super().__init__()
        self.impl = validate_impl(impl)
        if padding_mode != "zeros":
            raise ValueError(f'padding_mode must be "zeros" for a transposed convolution, got {padding_mode!r}')
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must be positive and divide in_channels={in_channels} and out_channels={out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.output_padding = _pair(output_padding, "output_padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups = groups
        self.padding_mode = padding_mode
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op < 0 or op >= max(s, d):
                raise ValueError(
                    f"output_padding must be non-negative and smaller than either stride or dilation, "
                    f"got output_padding={self.output_padding}, stride={self.stride}, dilation={self.dilation}"
                )
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels // groups, *self.kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same calls in the same order as nn.ConvTranspose2d, so equal seeds give equal weights.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(self.bias, -bound, bound)

    def output_padding_for(self, input_size: Sequence[int], output_size: Sequence[int]) -> tuple[int, int]:
        """The ``output_padding`` that makes the output ``output_size`` (last two entries are H, W)."""
        if len(output_size) not in (2, len(input_size)):
            raise ValueError(f"output_size must be (H, W) or the full output shape, got {tuple(output_size)}")
        target = tuple(output_size)[-2:]
        result = []
        for axis, (size_in, size_out) in enumerate(zip(tuple(input_size)[-2:], target, strict=True)):
            smallest = transposed_output_size(
                size_in, self.kernel_size[axis], self.stride[axis], self.padding[axis], 0, self.dilation[axis]
            )
            largest = smallest + self.stride[axis] - 1
            if not smallest <= size_out <= largest:
                raise ValueError(
                    f"output_size {tuple(target)} is not reachable from input {tuple(input_size)[-2:]}: "
                    f"axis {axis} must lie in [{smallest}, {largest}]"
                )
            result.append(size_out - smallest)
        return (result[0], result[1])

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        output_padding = (
            self.output_padding if output_size is None else self.output_padding_for(input.shape, output_size)
        )
        return conv_transpose2d_direct(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
            impl=self.impl,
        )

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.impl != DEFAULT_IMPL:
            text += f", impl={self.impl!r}"
        return text
