"""Transposed convolution computed as an ordinary (direct) convolution.

For input ``x`` of shape ``N×C_in×H×W`` and a ``nn.ConvTranspose2d``-layout weight ``w`` of shape
``C_in×(C_out/g)×k_h×k_w``, ``conv_transpose2d(x, w)`` equals

    conv2d(pad(zero_insert(x, s), d·(k−1)−p [+ op at bottom/right]), rot180(swap_in_out(w)), stride=1, dilation=d)

where ``zero_insert`` puts ``s−1`` zeros between neighbouring pixels (``H`` → ``(H−1)·s+1``), ``pad`` adds that many
zeros on each side (a negative amount crops), ``swap_in_out`` turns each group's ``C_in/g×C_out/g`` block into
``C_out/g×C_in/g`` and ``rot180`` flips both spatial axes. The output height (width alike) is

    H_out = (H − 1)·s − 2·p + d·(k − 1) + op + 1.

This is the matrix view made concrete: a convolution is ``y = C·vec(x)`` for a sparse matrix ``C``; the transposed
convolution is ``Cᵀ·vec(y)``, and ``Cᵀ`` is itself a convolution with the rotated kernel over the dilated input.

That recipe (``impl="zero_insertion"``, kept as the reference) multiplies by the inserted zeros, about ``s²`` times
the work needed. ``impl="subpixel"`` (:mod:`upseg.upsample.ops.polyphase`) splits the same convolution into its ``s²``
sub-pixel phases, one ordinary convolution of the un-dilated input, and is the default because it measured faster
(``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from upseg.upsample.ops.polyphase import conv_transpose2d_polyphase

IntOrPair = int | Sequence[int]

IMPLS = ("subpixel", "zero_insertion")
"""Ways to compute it: ``subpixel`` (one convolution of the input, phases as channels; see
:mod:`upseg.upsample.ops.polyphase`) and ``zero_insertion`` (the literal recipe above, the reference)."""
DEFAULT_IMPL = "subpixel"  # the faster of the two at every decoder shape measured in docs/benchmarks.md


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    values = tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return values  # type: ignore[return-value]


def transposed_output_size(
    input_size: int, kernel_size: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """Size of one spatial axis of a transposed convolution: ``(H−1)·s − 2p + d·(k−1) + op + 1``."""
    return (input_size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def zero_insert_and_pad(input: Tensor, stride: tuple[int, int], pads: tuple[int, int, int, int]) -> Tensor:
    """Put ``stride−1`` zeros between neighbouring pixels, then pad ``(left, right, top, bottom)``.

    ``N×C×H×W`` → ``N×C×((H−1)·s_h+1+top+bottom)×((W−1)·s_w+1+left+right)``; a negative pad crops that side.
    """
    stride_h, stride_w = stride
    n, c, h, w = input.shape
    if stride_h > 1 or stride_w > 1:
        dilated = input.new_zeros(n, c, (h - 1) * stride_h + 1, (w - 1) * stride_w + 1)
        dilated[:, :, ::stride_h, ::stride_w] = input
    else:
        dilated = input
    if any(pads):
        dilated = F.pad(dilated, pads)
    return dilated


def rotate_and_swap_kernel(weight: Tensor, groups: int) -> Tensor:
    """``C_in×(C_out/g)×k_h×k_w`` (ConvTranspose layout) → ``C_out×(C_in/g)×k_h×k_w`` (Conv layout), rotated 180°."""
    c_in, c_out_per_group, k_h, k_w = weight.shape
    swapped = (
        weight.reshape(groups, c_in // groups, c_out_per_group, k_h, k_w)
        .transpose(1, 2)
        .reshape(groups * c_out_per_group, c_in // groups, k_h, k_w)
    )
    return swapped.flip(-2, -1)


def validate_impl(impl: str) -> str:
    """``impl`` itself if it names a way to compute the transposed convolution, else ``ValueError``."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    return impl


def _validate(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    groups: int,
    dilation: tuple[int, int],
) -> None:
    if input.dim() != 4:
        raise ValueError(f"input must be 3-D (C×H×W) or 4-D (N×C×H×W), got shape {tuple(input.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be 4-D (C_in×C_out/groups×kH×kW), got shape {tuple(weight.shape)}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if any(s < 1 for s in stride):
        raise ValueError(f"stride must be positive, got {stride}")
    if any(d < 1 for d in dilation):
        raise ValueError(f"dilation must be positive, got {dilation}")
    if any(p < 0 for p in padding):
        raise ValueError(f"padding must be non-negative, got {padding}")
    for axis, (op, s, d) in enumerate(zip(output_padding, stride, dilation, strict=True)):
        if op < 0 or op >= max(s, d):
            raise ValueError(
                f"output_padding must be non-negative and smaller than either stride or dilation, got "
                f"output_padding={op}, stride={s}, dilation={d} on axis {axis}"
            )
    if weight.shape[0] != input.shape[1]:
        raise ValueError(
            f"weight expects {weight.shape[0]} input channels (its first dimension), input has {input.shape[1]}"
        )
    if weight.shape[0] % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({weight.shape[0]})")
    out_channels = weight.shape[1] * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},), got {tuple(bias.shape)}")


def conv_transpose2d_direct(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
    impl: str = DEFAULT_IMPL,
) -> Tensor:
    """Same result as ``F.conv_transpose2d``, computed as one ordinary ``F.conv2d``.

    Args mirror ``torch.nn.functional.conv_transpose2d``: ``input`` is ``N×C_in×H×W`` (or unbatched ``C_in×H×W``),
    ``weight`` is ``C_in×(C_out/groups)×k_h×k_w``; ``stride``, ``padding``, ``output_padding`` and ``dilation`` are
    ints or ``(h, w)`` pairs. Returns ``N×C_out×H_out×W_out`` with
    ``H_out = (H−1)·s_h − 2·p_h + d_h·(k_h−1) + op_h + 1`` (``W_out`` alike).

    ``impl="zero_insertion"``: each side of the zero-inserted input is padded by ``d·(k−1) − p`` (bottom and right by
    ``op`` more); a negative amount crops. The kernel is rotated 180° with in/out channels swapped per group, and the
    convolution runs with stride 1 and the given dilation and groups.

    ``impl="subpixel"`` (default): the convolution runs over the input itself, with the ``s_h·s_w`` sub-kernels of
    the rotated kernel as output channels, and the phases are interleaved into the output — no multiplications by
    inserted zeros (see :mod:`upseg.upsample.ops.polyphase`). Both are exact for every argument; they differ only in
    speed and floating-point summation order.
    """
    validate_impl(impl)
    stride_hw = _pair(stride, "stride")
    padding_hw = _pair(padding, "padding")
    output_padding_hw = _pair(output_padding, "output_padding")
    dilation_hw = _pair(dilation, "dilation")
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    _validate(input, weight, bias, stride_hw, padding_hw, output_padding_hw, groups, dilation_hw)

    k_h, k_w = weight.shape[-2:]
    out_h = transposed_output_size(
        input.shape[-2], k_h, stride_hw[0], padding_hw[0], output_padding_hw[0], dilation_hw[0]
    )
    out_w = transposed_output_size(
        input.shape[-1], k_w, stride_hw[1], padding_hw[1], output_padding_hw[1], dilation_hw[1]
    )
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"padding {padding_hw} is too large for input {tuple(input.shape[-2:])}, kernel {(k_h, k_w)}, "
            f"stride {stride_hw} and dilation {dilation_hw}: the output would be {out_h}×{out_w}"
        )

    if impl == "subpixel":
        output = conv_transpose2d_polyphase(
            input, weight, bias, stride_hw, padding_hw, output_padding_hw, groups, dilation_hw
        )
        return output.squeeze(0) if unbatched else output

    edge_h = dilation_hw[0] * (k_h - 1) - padding_hw[0]
    edge_w = dilation_hw[1] * (k_w - 1) - padding_hw[1]
    pads = (edge_w, edge_w + output_padding_hw[1], edge_h, edge_h + output_padding_hw[0])
    expanded = zero_insert_and_pad(input, stride_hw, pads)
    output = F.conv2d(expanded, rotate_and_swap_kernel(weight, groups), bias, 1, 0, dilation_hw, groups)
    return output.squeeze(0) if unbatched else output
