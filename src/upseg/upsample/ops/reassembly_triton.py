"""The reassembly (:mod:`.reassembly` has the formula) as fused Triton kernels, forward and backward
(``impl="triton"``), as mmcv's ``carafe_forward`` / ``carafe_backward`` compute it: no neighbourhood copy, each value
read from the inputs where it lies. Inputs float32, bfloat16 or float16 (features and kernels alike), sums in float32,
results in the inputs' dtype; any strides (channels_last included).

With features ``x`` (``N×C×h×w``), kernels ``K`` (``N×k²×sh×sw``), ``r = ⌊k/2⌋`` and the output's gradient ``g``:

    forward            y[n, c, i, j] = Σ_{a,b} K[n, (a,b), i, j] · x[n, c, ⌊i/s⌋ + a − r, ⌊j/s⌋ + b − r]
                       one program per block of output pixels × block of channels, a loop over the k² taps
    kernels' gradient  ∂K[n, (a,b), i, j] = Σ_c g[n, c, i, j] · x[n, c, ⌊i/s⌋ + a − r, ⌊j/s⌋ + b − r]
                       one program per block of output pixels, all k² taps at once, a loop over the channels
    features' gradient ∂x[n, c, u, v] = Σ_{a,b} Σ_{p,q<s} K[n, (a,b), i, j] · g[n, c, i, j],
                           i = (u + r − a)·s + p,  j = (v + r − b)·s + q,  source pixel (i/s, j/s) inside the image
                       one program per block of input pixels × block of channels × the s² sub-pixels, gathering from
                       the k²·s² output pixels that read ``(u, v)`` (no atomics: deterministic)

with ``x`` zero outside the image, i.e. masked loads at the borders. The block sizes below are a first guess, not
tuned on a GPU (none was available when they were written).

Registered as the custom operators ``upseg::reassemble`` and ``upseg::reassemble_backward`` (``torch.library``), with
fake (meta) implementations, so that ``torch.compile(fullgraph=True)`` traces them as single nodes, and with
``register_autograd``, so that autograd uses the backward kernels. There is no double backward: differentiating the
backward operator raises PyTorch's error for an operator without an autograd formula. ``torch.export`` and ONNX export
take the portable path instead (:mod:`.reassembly` chooses it while exporting): an exported graph holding
``upseg::reassemble`` would need this module and a GPU to run, and ONNX has no such operator.

This module imports triton; :mod:`.reassembly` imports it only when the Triton path is chosen, so that the package
works where triton is absent. With ``TRITON_INTERPRET=1`` the kernels run in Triton's interpreter, on CPU tensors too
(which is how the tests check them without a GPU). ``triton.jit`` reads that variable when it DECORATES a function,
not when a kernel is launched — and triton's own library (``tl.zeros``, ``tl.sum``, ...) is decorated when
``triton.language`` is first imported — so it must be set before triton is imported, that is, for a whole process.
"""

import os
from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from upseg.upsample.ops.reassembly_checks import check_reassembly_inputs, check_triton_dtype

BLOCK_PIXELS = 64
BLOCK_CHANNELS = 16
FEATURES_GRAD_SLOTS = 128  # input pixels × sub-pixels per program of the features' gradient
Shape = tuple[int, ...]


@triton.jit
def reassemble_forward_kernel(
    x_ptr,
    k_ptr,
    y_ptr,
    channels,
    height,
    width,
    x_stride_n,
    x_stride_c,
    x_stride_h,
    x_stride_w,
    k_stride_n,
    k_stride_t,
    k_stride_h,
    k_stride_w,
    y_stride_n,
    y_stride_c,
    y_stride_h,
    y_stride_w,
    KERNEL_SIZE: tl.constexpr,
    SCALE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    out_width = width * SCALE
    pixel = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2).to(tl.int64)
    in_pixels = pixel < height * SCALE * out_width
    in_channels = channel < channels
    i, j = pixel // out_width, pixel % out_width
    source_i, source_j = i // SCALE, j // SCALE
    x_base = x_ptr + batch * x_stride_n + channel.to(tl.int64)[:, None] * x_stride_c
    k_pointers = k_ptr + batch * k_stride_n + i.to(tl.int64) * k_stride_h + j.to(tl.int64) * k_stride_w
    total = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
    for tap in range(KERNEL_SIZE * KERNEL_SIZE):
        row = source_i + tap // KERNEL_SIZE - KERNEL_SIZE // 2
        col = source_j + tap % KERNEL_SIZE - KERNEL_SIZE // 2
        inside = in_pixels & (row >= 0) & (row < height) & (col >= 0) & (col < width)
        weight = tl.load(k_pointers, mask=in_pixels, other=0.0).to(tl.float32)
        k_pointers += k_stride_t  # pointers advance in 64 bits, where tap·stride could overflow 32
        offset = row.to(tl.int64) * x_stride_h + col.to(tl.int64) * x_stride_w
        value = tl.load(x_base + offset[None, :], mask=in_channels[:, None] & inside[None, :], other=0.0)
        total += value.to(tl.float32) * weight[None, :]
    y_offset = batch * y_stride_n + channel.to(tl.int64)[:, None] * y_stride_c
    y_offset += (i.to(tl.int64) * y_stride_h + j.to(tl.int64) * y_stride_w)[None, :]
    tl.store(y_ptr + y_offset, total.to(y_ptr.dtype.element_ty), mask=in_channels[:, None] & in_pixels[None, :])


@triton.jit
def reassemble_kernels_grad_kernel(
    g_ptr,
    x_ptr,
    dk_ptr,
    channels,
    height,
    width,
    g_stride_n,
    g_stride_c,
    g_stride_h,
    g_stride_w,
    x_stride_n,
    x_stride_c,
    x_stride_h,
    x_stride_w,
    dk_stride_n,
    dk_stride_t,
    dk_stride_h,
    dk_stride_w,
    KERNEL_SIZE: tl.constexpr,
    SCALE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_T: tl.constexpr,
):
    out_width = width * SCALE
    pixel = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    batch = tl.program_id(1).to(tl.int64)
    tap = tl.arange(0, BLOCK_T)
    in_pixels = pixel < height * SCALE * out_width
    in_taps = tap < KERNEL_SIZE * KERNEL_SIZE
    i, j = pixel // out_width, pixel % out_width
    row = (i // SCALE)[None, :] + (tap // KERNEL_SIZE - KERNEL_SIZE // 2)[:, None]
    col = (j // SCALE)[None, :] + (tap % KERNEL_SIZE - KERNEL_SIZE // 2)[:, None]
    inside = in_taps[:, None] & in_pixels[None, :] & (row >= 0) & (row < height) & (col >= 0) & (col < width)
    x_pointers = x_ptr + batch * x_stride_n + row.to(tl.int64) * x_stride_h + col.to(tl.int64) * x_stride_w
    g_pointers = g_ptr + batch * g_stride_n + i.to(tl.int64) * g_stride_h + j.to(tl.int64) * g_stride_w
    total = tl.zeros((BLOCK_T, BLOCK_P), dtype=tl.float32)
    for _ in range(channels):
        grad = tl.load(g_pointers, mask=in_pixels, other=0.0).to(tl.float32)
        value = tl.load(x_pointers, mask=inside, other=0.0).to(tl.float32)
        total += value * grad[None, :]
        g_pointers += g_stride_c
        x_pointers += x_stride_c
    dk_offset = batch * dk_stride_n + tap.to(tl.int64)[:, None] * dk_stride_t
    dk_offset += (i.to(tl.int64) * dk_stride_h + j.to(tl.int64) * dk_stride_w)[None, :]
    tl.store(dk_ptr + dk_offset, total.to(dk_ptr.dtype.element_ty), mask=in_taps[:, None] & in_pixels[None, :])


@triton.jit
def reassemble_features_grad_kernel(
    g_ptr,
    k_ptr,
    dx_ptr,
    channels,
    height,
    width,
    g_stride_n,
    g_stride_c,
    g_stride_h,
    g_stride_w,
    k_stride_n,
    k_stride_t,
    k_stride_h,
    k_stride_w,
    dx_stride_n,
    dx_stride_c,
    dx_stride_h,
    dx_stride_w,
    KERNEL_SIZE: tl.constexpr,
    SCALE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    # tile: channels × input pixels × the s² sub-pixels of a source pixel, summed at the end
    pixel = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    batch = tl.program_id(2).to(tl.int64)
    sub_pixel = tl.arange(0, BLOCK_S)
    in_pixels = pixel < height * width
    in_channels = channel < channels
    u, v = pixel // width, pixel % width
    sub_i, sub_j = sub_pixel // SCALE, sub_pixel % SCALE
    in_sub_pixels = sub_pixel < SCALE * SCALE
    g_base = g_ptr + batch * g_stride_n + channel.to(tl.int64)[:, None, None] * g_stride_c
    k_tap = k_ptr + batch * k_stride_n
    total = tl.zeros((BLOCK_C, BLOCK_P, BLOCK_S), dtype=tl.float32)
    for tap in range(KERNEL_SIZE * KERNEL_SIZE):
        # the source pixel whose tap (a, b) reads (u, v), and its s² output pixels
        source_i = u + KERNEL_SIZE // 2 - tap // KERNEL_SIZE
        source_j = v + KERNEL_SIZE // 2 - tap % KERNEL_SIZE
        inside = in_pixels & (source_i >= 0) & (source_i < height) & (source_j >= 0) & (source_j < width)
        inside = inside[:, None] & in_sub_pixels[None, :]
        i = (source_i * SCALE)[:, None] + sub_i[None, :]
        j = (source_j * SCALE)[:, None] + sub_j[None, :]
        offset = i.to(tl.int64) * g_stride_h + j.to(tl.int64) * g_stride_w
        grad = tl.load(g_base + offset[None, :, :], mask=in_channels[:, None, None] & inside[None, :, :], other=0.0)
        k_offset = i.to(tl.int64) * k_stride_h + j.to(tl.int64) * k_stride_w
        weight = tl.load(k_tap + k_offset, mask=inside, other=0.0)
        total += grad.to(tl.float32) * weight.to(tl.float32)[None, :, :]
        k_tap += k_stride_t
    dx_offset = batch * dx_stride_n + channel.to(tl.int64)[:, None] * dx_stride_c
    dx_offset += (u.to(tl.int64) * dx_stride_h + v.to(tl.int64) * dx_stride_w)[None, :]
    dx = tl.sum(total, axis=2).to(dx_ptr.dtype.element_ty)
    tl.store(dx_ptr + dx_offset, dx, mask=in_channels[:, None] & in_pixels[None, :])


def interpreting() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's interpreter (as ``triton.jit`` read it; see the module doc)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _check_devices(*tensors: Tensor) -> None:
    if not interpreting() and any(not t.is_cuda for t in tensors):
        raise ValueError(
            "impl='triton' needs CUDA tensors (or TRITON_INTERPRET=1 to run Triton's interpreter on the CPU); got "
            f"tensors on {', '.join(sorted({str(t.device) for t in tensors}))}: use impl='torch' or 'auto' there"
        )


def _strides(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.stride())


@torch.library.custom_op("upseg::reassemble", mutates_args=())
def reassemble_op(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
    """The reassembly by the Triton forward kernel."""
    n, channels, height, width = features.shape
    output = features.new_empty(n, channels, scale_factor * height, scale_factor * width)
    if output.numel() == 0:
        return output
    _check_devices(features, kernels)
    grid = (triton.cdiv(output.shape[-2] * output.shape[-1], BLOCK_PIXELS), triton.cdiv(channels, BLOCK_CHANNELS), n)
    reassemble_forward_kernel[grid](
        features,
        kernels,
        output,
        channels,
        height,
        width,
        *_strides(features),
        *_strides(kernels),
        *_strides(output),
        KERNEL_SIZE=kernel_size,
        SCALE=scale_factor,
        BLOCK_P=BLOCK_PIXELS,
        BLOCK_C=BLOCK_CHANNELS,
    )
    return output


@reassemble_op.register_fake
def _(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
    n, channels, height, width = features.shape
    return features.new_empty(n, channels, scale_factor * height, scale_factor * width)


@torch.library.custom_op("upseg::reassemble_backward", mutates_args=())
def reassemble_backward_op(
    grad_output: Tensor, features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int
) -> tuple[Tensor, Tensor]:
    """The gradients of the features and the kernels by the two Triton backward kernels."""
    n, channels, height, width = features.shape
    grad_features, grad_kernels = torch.empty_like(features), torch.empty_like(kernels)
    if grad_output.numel() == 0:
        return grad_features.zero_(), grad_kernels.zero_()
    _check_devices(grad_output, features, kernels)
    out_pixels = grad_output.shape[-2] * grad_output.shape[-1]
    shared = (channels, height, width)
    reassemble_kernels_grad_kernel[(triton.cdiv(out_pixels, BLOCK_PIXELS), n)](
        grad_output,
        features,
        grad_kernels,
        *shared,
        *_strides(grad_output),
        *_strides(features),
        *_strides(grad_kernels),
        KERNEL_SIZE=kernel_size,
        SCALE=scale_factor,
        BLOCK_P=BLOCK_PIXELS,
        BLOCK_T=triton.next_power_of_2(kernel_size * kernel_size),
    )
    sub_pixels = triton.next_power_of_2(scale_factor * scale_factor)
    block_pixels = max(1, FEATURES_GRAD_SLOTS // sub_pixels)
    reassemble_features_grad_kernel[
        (triton.cdiv(height * width, block_pixels), triton.cdiv(channels, BLOCK_CHANNELS), n)
    ](
        grad_output,
        kernels,
        grad_features,
        *shared,
        *_strides(grad_output),
        *_strides(kernels),
        *_strides(grad_features),
        KERNEL_SIZE=kernel_size,
        SCALE=scale_factor,
        BLOCK_P=block_pixels,
        BLOCK_C=BLOCK_CHANNELS,
        BLOCK_S=sub_pixels,
    )
    return grad_features, grad_kernels


@reassemble_backward_op.register_fake
def _(
    grad_output: Tensor, features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int
) -> tuple[Tensor, Tensor]:
    return torch.empty_like(features), torch.empty_like(kernels)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    features, kernels, kernel_size, scale_factor = inputs
    ctx.save_for_backward(features, kernels)
    ctx.kernel_size, ctx.scale_factor = kernel_size, scale_factor


def _backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, None, None]:
    features, kernels = ctx.saved_tensors
    grad_features, grad_kernels = reassemble_backward_op(
        grad_output, features, kernels, ctx.kernel_size, ctx.scale_factor
    )
    return grad_features, grad_kernels, None, None


reassemble_op.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.upseg.reassemble)
def _forward_flops(
    features_shape: Shape, kernels_shape: Shape, kernel_size: int, scale_factor: int, *, out_shape: Shape, **kwargs: Any
) -> int:
    """One multiply-add per tap and output value, as the unfold path's matrix product counts."""
    n, channels, out_height, out_width = out_shape
    return 2 * n * channels * out_height * out_width * kernel_size * kernel_size


@register_flop_formula(torch.ops.upseg.reassemble_backward)
def _backward_flops(
    grad_shape: Shape, features_shape: Shape, kernels_shape: Shape, kernel_size: int, scale_factor: int, **kwargs: Any
) -> int:
    """Twice the forward's: one contraction for each gradient."""
    n, channels, out_height, out_width = grad_shape
    return 4 * n * channels * out_height * out_width * kernel_size * kernel_size


def reassemble_triton(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
    """``N×C×h×w`` features and ``N×k²×sh×sw`` kernels (``k = kernel_size``, ``s = scale_factor``) → ``N×C×sh×sw`` by
    the Triton kernels (CUDA tensors, or any under ``TRITON_INTERPRET=1``)."""
    check_reassembly_inputs(features, kernels, kernel_size, scale_factor)
    check_triton_dtype(features)
    return reassemble_op(features, kernels, kernel_size, scale_factor)
