"""The inputs every reassembly path accepts (:mod:`.reassembly`): features ``N×C×h×w``, kernels ``N×k²×sh×sw`` of
the same dtype on the same device, ``k`` odd and ``s`` a positive int. Anything else raises one ``ValueError`` that
names the argument, what it must be and how to fix it, before any path (Triton, chunked, unfold) computes."""

from __future__ import annotations

import torch
from torch import Tensor

TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
"""What the Triton kernels take (they sum in float32); float64 stays on the PyTorch paths."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def check_reassembly_inputs(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> None:
    """Raise ``ValueError`` unless ``features`` (``N×C×h×w``) and ``kernels`` (``N×k²×sh×sw``, ``k = kernel_size``,
    ``s = scale_factor``) can be reassembled together."""
    if not _is_int(kernel_size) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be a positive odd int (1, 3, 5, ...), so that each neighbourhood is centred on its "
            f"source pixel; got {kernel_size!r}"
        )
    if not _is_int(scale_factor) or scale_factor < 1:
        raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
    if features.dim() != 4 or not features.is_floating_point():
        raise ValueError(
            f"features must be a floating-point N×C×h×w tensor; got {features.dtype} of shape {_shape(features.shape)}"
        )
    n, _, height, width = features.shape
    expected = (n, kernel_size * kernel_size, scale_factor * height, scale_factor * width)
    if tuple(kernels.shape) != expected:
        raise ValueError(
            f"kernels must be N×k²×sH×sW = {_shape(expected)} for features of shape {_shape(features.shape)}, "
            f"kernel_size={kernel_size} and scale_factor={scale_factor}; got {_shape(kernels.shape)}"
        )
    if kernels.dtype != features.dtype or kernels.device != features.device:
        raise ValueError(
            f"kernels must be {features.dtype} on {features.device} like features (shape {_shape(expected)}); got "
            f"{kernels.dtype} on {kernels.device}: convert them with kernels.to(features)"
        )


def check_triton_dtype(features: Tensor) -> None:
    """Raise ``ValueError`` unless the Triton kernels take ``features``' dtype."""
    if features.dtype not in TRITON_DTYPES:
        raise ValueError(
            f"impl='triton' takes float32, bfloat16 or float16 features and kernels, got {features.dtype}: use "
            "impl='torch' for it"
        )
