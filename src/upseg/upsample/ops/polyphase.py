"""Transposed convolution as ONE convolution of the un-upsampled input: the sub-pixel (polyphase) form.

Per axis (the two axes are independent), ``conv_transpose`` sends input ``i`` through kernel tap ``j`` to output
``o = i·s + j·d − p``. Write ``t = o + p = q·s + ρ`` with phase ``ρ ∈ [0, s)``. Tap ``j`` reaches phase ``ρ`` iff
``j·d ≡ ρ (mod s)``; those taps are ``j₀, j₀ + s/γ, …, j_last`` with ``γ = gcd(s, d)``, and they read input
``q − m_j``, ``m_j = (j·d − ρ)/s``, which steps by ``D = d/γ`` from one tap to the next. So phase ``ρ`` is

    y_ρ[q] = Σ_n x[q − m_last(ρ) + n·D] · w[j_last − n·s/γ]

an ordinary correlation of the input (no zeros inserted) with dilation ``D`` and the sub-kernel ``w[j_last::−s/γ]``
(a strided slice of the 180°-rotated kernel). All ``s_h·s_w`` phases share one ``F.conv2d``: with
``P = max_ρ m_last(ρ) − ⌊p/s⌋`` zeros before the input (a crop where negative) and enough after, phase ``ρ``'s
sub-kernel sits at tap ``e_ρ`` of a common ``L``-tap kernel (zeros elsewhere) and ``y_ρ[q]`` is convolution output
``q − ⌊p/s⌋ + δ_ρ``, where ``e_ρ·D + δ_ρ = P + ⌊p/s⌋ − m_last(ρ)`` and ``0 ≤ δ_ρ < D``. With ``D = 1`` (``d``
divides ``s``: every upsampler) all ``δ_ρ = 0``; with ``D > 1`` the phases' outputs may start ``δ_ρ`` apart. A phase
no tap reaches gets an all-zero sub-kernel. This is exact for every argument: there is no fallback.

Interleaving. Output ``o = q'·s + r`` (output phase ``r``) is tap phase ``ρ = (r + p) mod s`` at convolution step
``start(r) + q'``, ``start(r) = ⌊(r + p)/s⌋ − ⌊p/s⌋ + δ_ρ``. When ``s`` divides ``H_out`` and ``start(r)`` is affine in
``r`` (always for ``s ≤ 2``, so for every ×2 upsampler), the phases are ordered by ``r`` and the whole output is one
strided view of the convolution output, copied once: no crop. Otherwise they are ordered by ``ρ``, interleaved over
``t`` and cropped to ``[p mod s, p mod s + H_out)``; phases whose ``δ_ρ`` are not affine in ``ρ`` are first sliced
one by one (a copy).

Shapes: ``x`` ``N×C_in×H×W`` (or unbatched ``C_in×H×W``) and weight ``C_in×(C_out/g)×k_h×k_w`` (ConvTranspose
layout, ``g`` groups) → kernel ``(C_out·s_h·s_w)×(C_in/g)×L_h×L_w`` (channel ``(c·s_h + phase_h)·s_w + phase_w``,
so each group's channels stay together) → convolution output ``N×(C_out·s_h·s_w)×U_h×U_w`` → interleave (a pixel
shuffle with per-axis factors) ``N×C_out×(A_h·s_h)×(A_w·s_w)`` → crop ``N×C_out×H_out×W_out``, with
``H_out = (H−1)·s − 2p + d·(k−1) + op + 1``. The result may be a non-contiguous view when cropped. The bias enters
the convolution once per phase channel, so once per output pixel. Multiply-adds per output pixel and axis: ``L``
(``⌈k/s⌉`` for ``d = 1``, plus a border row per phase), against ``k/s`` on average for ``F.conv_transpose2d`` and
``k`` for the zero-insertion form.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

T = TypeVar("T")


def _eager_cache(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` memoised in eager mode. ``torch.compile`` traces the plain function instead (once per graph):
    it would ignore a cache anyway, with a warning, and a tensor kept from eager mode cannot become a constant."""
    cached = functools.lru_cache(maxsize=1024)(function)

    @functools.wraps(function)
    def call(*args: Hashable) -> T:
        return function(*args) if torch.compiler.is_compiling() else cached(*args)

    call.cache_info, call.cache_clear = cached.cache_info, cached.cache_clear
    return call


@dataclass(frozen=True)
class AxisPlan:
    """How one axis of a transposed convolution maps onto the shared convolution and the interleave."""

    taps: tuple[int, ...]  # s·L entries, phase-major: the kernel tap each slot of each phase takes; k means zero
    length: int  # L, taps per phase in the shared kernel
    dilation: int  # D = d / gcd(s, d)
    input_start: int  # first input index the shared convolution reads (negative: zeros before the input)
    input_length: int  # how many input positions it reads (zeros past the input)
    starts: tuple[int, ...]  # per phase, the convolution step of its first interleaved output
    steps: int  # A, interleaved outputs per phase
    crop: int  # interleaved rows before the first output row
    output_size: int


def _is_affine(values: tuple[int, ...]) -> bool:
    return len(set(b - a for a, b in zip(values[:-1], values[1:], strict=True))) <= 1


@_eager_cache
def plan_axis(size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int) -> AxisPlan:
    """The per-axis plan for a transposed convolution of an axis of ``size`` inputs (see module doc)."""
    output_size = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    dilation_in = dilation // math.gcd(stride, dilation)
    first_step = padding // stride

    phase_taps = [[j for j in range(kernel) if j * dilation % stride == phase] for phase in range(stride)]
    last_reads = {phase: (taps[-1] * dilation - phase) // stride for phase, taps in enumerate(phase_taps) if taps}
    before = max(last_reads.values()) - first_step
    offsets, windows = [], []
    for phase in range(stride):
        # A phase without taps outputs only the bias: an all-zero sub-kernel at offset 0, window 0.
        shift = before + first_step - last_reads[phase] if phase in last_reads else 0
        offsets.append(shift // dilation_in)
        windows.append(shift % dilation_in)

    by_output_phase = [(r + padding) % stride for r in range(stride)]
    output_starts = tuple(
        (r + padding) // stride - first_step + windows[phase] for r, phase in enumerate(by_output_phase)
    )
    if output_size % stride == 0 and _is_affine(output_starts):
        order, starts, steps, crop = by_output_phase, output_starts, output_size // stride, 0
    else:
        order, starts, crop = list(range(stride)), tuple(windows), padding - first_step * stride
        steps = (padding + output_size - 1) // stride - first_step + 1

    length = max(offset + len(taps) for offset, taps in zip(offsets, phase_taps, strict=True))
    slots = []
    for phase in order:
        sub_kernel = phase_taps[phase][::-1]  # correlation order: the tap that reads the earliest input first
        after = length - offsets[phase] - len(sub_kernel)
        slots.extend([kernel] * offsets[phase] + sub_kernel + [kernel] * after)
    conv_steps = max(starts) + steps
    return AxisPlan(
        taps=tuple(slots),
        length=length,
        dilation=dilation_in,
        input_start=-before,
        input_length=conv_steps + (length - 1) * dilation_in,
        starts=starts,
        steps=steps,
        crop=crop,
        output_size=output_size,
    )


@_eager_cache
def _phase_slots(plan_h: AxisPlan, plan_w: AxisPlan, k_h: int, k_w: int) -> tuple[int, ...]:
    """Per slot of the phase kernel, in ``(phase_h, phase_w, tap_h, tap_w)`` order, the flat kernel tap it takes;
    ``k_h·k_w`` means zero."""
    length_h, length_w = plan_h.length, plan_w.length
    return tuple(
        k_h * k_w if tap_h == k_h or tap_w == k_w else tap_h * k_w + tap_w
        for phase_h in range(len(plan_h.starts))
        for phase_w in range(len(plan_w.starts))
        for tap_h in plan_h.taps[phase_h * length_h : (phase_h + 1) * length_h]
        for tap_w in plan_w.taps[phase_w * length_w : (phase_w + 1) * length_w]
    )


@_eager_cache
def _slot_index(slots: tuple[int, ...], device: torch.device) -> Tensor:
    """``slots`` as an index tensor on ``device``, made once: making it anew copies host to device, and that copy
    waits for the GPU's queue at every step."""
    # A normal tensor even when first asked for under inference_mode (Lightning validates that way first): gather
    # saves its index for backward, and an inference tensor cannot be saved.
    with torch.inference_mode(False):
        return torch.tensor(slots, device=device)


def phase_kernel(weight: Tensor, groups: int, plan_h: AxisPlan, plan_w: AxisPlan) -> Tensor:
    """``C_in×(C_out/g)×k_h×k_w`` → ``(C_out·s_h·s_w)×(C_in/g)×L_h×L_w``: every phase's sub-kernel, for ``F.conv2d``.

    For one group the result is a transposed view, which ``F.conv2d`` lays out for its own kernels in one pass.
    """
    c_in, c_out_per_group, k_h, k_w = weight.shape
    phases = len(plan_h.starts) * len(plan_w.starts)
    # Phases before taps in the slots, so that swapping the channel axes afterwards moves whole L_h·L_w blocks:
    # with phases and taps interleaved, that copy is about 20 times slower.
    slots = _phase_slots(plan_h, plan_w, k_h, k_w)
    taps = weight.reshape(c_in, c_out_per_group, k_h * k_w)
    if k_h * k_w in slots:
        taps = F.pad(taps, (0, 1))  # tap k_h·k_w is zero: it fills the slots a phase does not use
    # gather along the contiguous last dimension: index_select or advanced indexing there is several times slower.
    index = _slot_index(slots, weight.device).expand(c_in, c_out_per_group, len(slots))
    in_per_group = c_in // groups
    return (
        taps.gather(2, index)
        .reshape(groups, in_per_group, c_out_per_group * phases, plan_h.length * plan_w.length)
        .transpose(1, 2)
        .reshape(groups * c_out_per_group * phases, in_per_group, plan_h.length, plan_w.length)
    )


def _window(input: Tensor, plan_h: AxisPlan, plan_w: AxisPlan) -> tuple[Tensor, tuple[int, int]]:
    """The part of ``input`` the shared convolution reads, as (tensor, padding for ``F.conv2d``); zeros outside it.

    The zeros shared by both ends of an axis are left to the convolution's own padding, which copies nothing;
    only the rest is cut (``narrow``) or padded (``F.pad``, which cannot crop past an edge by itself).
    """
    pads, conv_padding = [], []
    for axis, plan in ((-1, plan_w), (-2, plan_h)):
        size = input.shape[axis]
        start, stop = plan.input_start, plan.input_start + plan.input_length
        low = min(max(start, 0), size)
        high = min(max(stop, low), size)
        if (low, high) != (0, size):
            input = input.narrow(axis, low, high - low)
        before, after = low - start, stop - high
        shared = min(before, after)
        pads.extend((before - shared, after - shared))
        conv_padding.insert(0, shared)
    if any(pads):
        input = F.pad(input, pads)
    return input, (conv_padding[0], conv_padding[1])


def _align_phases(phases: Tensor, plan: AxisPlan, phase_dim: int, step_dim: int) -> tuple[Tensor, tuple[int, ...]]:
    """``phases`` and its per-phase starts along ``step_dim``, made affine in the phase (slicing phase by phase)."""
    if _is_affine(plan.starts):
        return phases, plan.starts
    aligned = torch.stack(
        [
            phases.select(phase_dim, phase).narrow(step_dim - 1, start, plan.steps)
            for phase, start in enumerate(plan.starts)
        ],
        dim=phase_dim,
    )
    return aligned, (0,) * len(plan.starts)


def _is_channels_last(tensor: Tensor) -> bool:
    return not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last)


def _interleave(
    conv: Tensor, out_channels: int, plan_h: AxisPlan, plan_w: AxisPlan, channels_last: bool = False
) -> Tensor:
    """``N×(C_out·s_h·s_w)×U_h×U_w`` → ``N×C_out×(A_h·s_h)×(A_w·s_w)``, phase ``p`` of step ``a`` from step
    ``start(p) + a`` of its channel; laid out channels_last if asked.

    ``conv`` must be a fresh ``F.conv2d`` output, so that its storage starts at offset 0: the strided view below
    gives an absolute storage offset, because ``torch.compile`` cannot trace ``Tensor.storage_offset()``.
    """
    batch = conv.shape[0]
    stride_h, stride_w = len(plan_h.starts), len(plan_w.starts)
    phases = conv.reshape(batch, out_channels, stride_h, stride_w, conv.shape[-2], conv.shape[-1])
    phases, starts_h = _align_phases(phases, plan_h, phase_dim=2, step_dim=4)
    phases, starts_w = _align_phases(phases, plan_w, phase_dim=3, step_dim=5)
    if any(starts_h + starts_w) or phases.shape[-2:] != (plan_h.steps, plan_w.steps):
        # Phase p of step a sits at (start(0) + a)·step_stride + p·(phase_stride + Δstart·step_stride): one strided
        # view, whose copy below is the interleave; its backward is one zero-fill and one copy, where slices would
        # add more. Where Δstart < 0 makes a stride negative, contiguous phases (phase outside step) make it positive.
        delta_h = starts_h[1] - starts_h[0] if stride_h > 1 else 0
        delta_w = starts_w[1] - starts_w[0] if stride_w > 1 else 0
        strides = phases.stride()
        if strides[2] + delta_h * strides[4] <= 0 or strides[3] + delta_w * strides[5] <= 0:
            phases = phases.contiguous()
        batch_stride, channel_stride, phase_h_stride, phase_w_stride, step_h_stride, step_w_stride = phases.stride()
        phases = phases.as_strided(
            (batch, out_channels, stride_h, stride_w, plan_h.steps, plan_w.steps),
            (
                batch_stride,
                channel_stride,
                phase_h_stride + delta_h * step_h_stride,
                phase_w_stride + delta_w * step_w_stride,
                step_h_stride,
                step_w_stride,
            ),
            starts_h[0] * step_h_stride + starts_w[0] * step_w_stride,
        )
    # A pixel shuffle; its backward is a view plus the copy the convolution's backward makes anyway.
    height, width = plan_h.steps * stride_h, plan_w.steps * stride_w
    if channels_last:
        return phases.permute(0, 4, 2, 5, 3, 1).reshape(batch, height, width, out_channels).permute(0, 3, 1, 2)
    return phases.permute(0, 1, 4, 2, 5, 3).reshape(batch, out_channels, height, width)


def conv_transpose2d_polyphase(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    groups: int,
    dilation: tuple[int, int],
) -> Tensor:
    """``F.conv_transpose2d`` for a 4-D ``input`` and validated pair arguments, as one ``F.conv2d`` over ``input``
    with all sub-pixel phases as output channels, then an interleave (see module doc)."""
    k_h, k_w = weight.shape[-2:]
    plan_h = plan_axis(input.shape[-2], k_h, stride[0], padding[0], output_padding[0], dilation[0])
    plan_w = plan_axis(input.shape[-1], k_w, stride[1], padding[1], output_padding[1], dilation[1])
    out_channels = weight.shape[1] * groups

    window, conv_padding = _window(input, plan_h, plan_w)
    kernel = phase_kernel(weight, groups, plan_h, plan_w)
    phase_bias = None if bias is None else bias.repeat_interleave(stride[0] * stride[1])
    conv = F.conv2d(window, kernel, phase_bias, 1, conv_padding, (plan_h.dilation, plan_w.dilation), groups)
    # channels_last in, channels_last out, as F.conv_transpose2d does: a channels_last decoder then stays so.
    channels_last = _is_channels_last(input) or _is_channels_last(weight)
    interleaved = _interleave(conv, out_channels, plan_h, plan_w, channels_last)
    if (plan_h.crop, plan_w.crop) == (0, 0) and interleaved.shape[-2:] == (plan_h.output_size, plan_w.output_size):
        return interleaved
    # Slices, not one as_strided view (whose backward would zero-fill the gradient once, not twice): the result of
    # the interleave may be a view at an offset, which torch.compile cannot read off. Of the upsamplers, the ×4 and
    # ×8 ones (kernel 2s, padding s/2) crop: their phases' starts are not affine in the phase.
    return interleaved.narrow(-2, plan_h.crop, plan_h.output_size).narrow(-1, plan_w.crop, plan_w.output_size)
