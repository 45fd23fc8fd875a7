"""Geometry and initialisation of the transposed-convolution upsamplers (``transpose``, ``direct``).

A stride-``s`` transposed convolution with kernel ``k = 2s − s mod 2`` and padding ``p = (k − s) // 2`` — Caffe/FCN's
choice — maps ``H`` to ``(H−1)·s − 2p + k = s·H`` exactly, and each output pixel sees the same number of taps. Another
kernel size gets the padding and output padding that keep the size ``s·H``. FCN's bilinear kernel makes such a
convolution equal to bilinear interpolation away from the borders.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
