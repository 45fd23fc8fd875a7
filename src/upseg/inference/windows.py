"""Sliding-window inference: the logits of an image too large for one pass, from overlapping windows.

Along an axis of ``S`` pixels, windows of ``w = min(crop, S)`` pixels start every ``stride`` pixels, at
``0, stride, 2·stride, … < S − w`` and at ``S − w``: the last one flush with the far border, so every pixel is
covered and no window reaches past the image (nothing is padded but what the network pads itself up to its size
multiple when the image is smaller than the crop). For windows ``b`` with logits ``z_b`` and weights ``ω`` (``w_h×w_w``,
the same for every window),

    z[p] = Σ_b ω[p − o_b] · z_b[p − o_b]  /  Σ_b ω[p − o_b]      over the windows b that contain pixel p (offset o_b).

``blend="uniform"`` (``ω = 1``): the plain mean of the overlapping windows' logits, as mmsegmentation's ``slide``
mode; the default, because one window then gives its logits exactly and every window counts alike.
``blend="gaussian"``: ``ω`` is a Gaussian centred on the window, ``σ = side/8`` per axis (as nnU-Net), so a pixel is
decided by the windows that see it with the most context around it; the window's border gets ``e^{−8} ≈ 3·10⁻⁴`` of
its centre's weight. A single window (``crop ≥`` the image) returns the network's logits unchanged in both.

Windows go through the network ``batch_size`` at a time (with the whole batch of images each); the sums are kept in
float32 (float64 for float64 logits), so memory is ``N×K×H×W`` for the result plus one batch of windows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Network = Callable[[Tensor], Tensor]


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Starts of the windows along one axis (see the module docstring): ``[0]`` when ``window ≥ size``."""
    if window >= size:
        return [0]
    return [*range(0, size - window, stride), size - window]


def window_weights(height: int, width: int, blend: str, device: torch.device | None = None) -> Tensor:
    """``height×width`` float32 blending weights: ones (``uniform``) or a Gaussian with ``σ = side/8``, peak 1."""
    if blend == "uniform":
        return torch.ones(height, width, device=device)

    def gaussian(side: int) -> Tensor:
        centre, sigma = (side - 1) / 2, max(side / 8, 1e-3)
        positions = torch.arange(side, dtype=torch.float64, device=device)
        return torch.exp(-0.5 * ((positions - centre) / sigma) ** 2)

    return torch.outer(gaussian(height), gaussian(width)).float()


def sliding_window_logits(
    network: Network,
    images: Tensor,
    crop: tuple[int, int],
    stride: tuple[int, int],
    blend: str = "uniform",
    batch_size: int = 4,
) -> Tensor:
    """``N×C×H×W`` images → ``N×K×H×W`` logits blended from windows (see the module docstring)."""
    batch, _, height, width = images.shape
    window = (min(crop[0], height), min(crop[1], width))
    boxes = [
        (top, left)
        for top in window_starts(height, window[0], stride[0])
        for left in window_starts(width, window[1], stride[1])
    ]
    if len(boxes) == 1:
        return network(images)
    weights = window_weights(*window, blend, images.device)
    total: Tensor | None = None
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first : first + batch_size]
        crops = torch.cat([images[..., top : top + window[0], left : left + window[1]] for top, left in chunk])
        logits = network(crops)
        if total is None:
            dtype = torch.promote_types(logits.dtype, torch.float32)
            total = torch.zeros(batch, logits.shape[1], height, width, dtype=dtype, device=images.device)
            coverage = torch.zeros(height, width, dtype=dtype, device=images.device)
            weights = weights.to(dtype)
        for part, (top, left) in zip(logits.split(batch), chunk, strict=True):
            total[..., top : top + window[0], left : left + window[1]] += part * weights
            coverage[top : top + window[0], left : left + window[1]] += weights
    assert total is not None
    return total / coverage
