"""What the reassembly's tests share: a plain-loop reference of its formula, random inputs, and bad inputs with the
message each must give."""

from __future__ import annotations

import torch


def reassemble_reference(x: torch.Tensor, kernels: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """y[n, c, i, j] = Σ_{a,b} K[n, a·k + b, i, j] · x[n, c, ⌊i/s⌋ + a − r, ⌊j/s⌋ + b − r], zero outside."""
    n, c, h, w = x.shape
    r = k // 2
    out = torch.zeros(n, c, s * h, s * w, dtype=x.dtype)
    for i in range(s * h):
        for j in range(s * w):
            for a in range(k):
                for b in range(k):
                    src_i, src_j = i // s + a - r, j // s + b - r
                    if 0 <= src_i < h and 0 <= src_j < w:
                        out[:, :, i, j] += kernels[:, a * k + b, i, j, None] * x[:, :, src_i, src_j]
    return out


def random_inputs(
    batch: int, channels: int, size: tuple[int, int], k: int, s: int, seed: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, kernels (any values: the formula does not need a softmax) and an output gradient."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=generator, dtype=dtype)
    kernels = torch.randn(batch, k * k, s * size[0], s * size[1], generator=generator, dtype=dtype)
    grad = torch.randn(batch, channels, s * size[0], s * size[1], generator=generator, dtype=dtype)
    return x, kernels, grad


FEATURES = (2, 3, 5, 7)
KERNELS_3X3 = (2, 9, 10, 14)  # what FEATURES need at k = 3, s = 2
BAD_INPUTS = {
    # name: (features' shape, kernels' shape, kernel_size, scale_factor, kernels' dtype and device, message)
    "width": (FEATURES, (2, 9, 10, 13), 3, 2, (torch.float32, "cpu"), r"kernels must be N×k²×sH×sW = 2×9×10×14 "),
    "taps": (FEATURES, (2, 25, 10, 14), 3, 2, (torch.float32, "cpu"), r"= 2×9×10×14 for features .* got 2×25×10×14"),
    "batch": (FEATURES, (1, 9, 10, 14), 3, 2, (torch.float32, "cpu"), r"= 2×9×10×14 for features .* got 1×9×10×14"),
    "even": (
        FEATURES,
        (2, 16, 10, 14),
        4,
        2,
        (torch.float32, "cpu"),
        r"kernel_size must be a positive odd int .* got 4",
    ),
    "zero": (
        FEATURES,
        (2, 0, 10, 14),
        0,
        2,
        (torch.float32, "cpu"),
        r"kernel_size must be a positive odd int .* got 0",
    ),
    "scale": (FEATURES, KERNELS_3X3, 3, 0, (torch.float32, "cpu"), r"scale_factor must be a positive int, got 0"),
    "3-d": ((3, 5, 7), (9, 10, 14), 3, 2, (torch.float32, "cpu"), r"features must be a floating-point N×C×h×w tensor"),
    "dtype": (
        FEATURES,
        KERNELS_3X3,
        3,
        2,
        (torch.float64, "cpu"),
        r"kernels must be torch.float32 on cpu like features",
    ),
    "device": (
        FEATURES,
        KERNELS_3X3,
        3,
        2,
        (torch.float32, "meta"),
        r"like features \(shape 2×9×10×14\); got .* on meta",
    ),
}
