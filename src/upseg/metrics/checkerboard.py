"""Checkerboard score: how much of a map's variation is explained by the sub-pixel phase of a period-``s`` grid.

For a map ``y`` (``N×C×H×W``) and period ``s``, every pixel ``(h, w)`` has phase ``(h mod s, w mod s)``. Per channel
``c``, with ``m_c`` the mean of ``y_c`` and ``m_{c,φ}`` its mean over the pixels of phase ``φ`` (``n_φ`` of them),

    score_c = sqrt( Σ_φ n_φ (m_{c,φ} − m_c)²  /  Σ_pixels (y_c − m_c)² )

— the correlation ratio η of value and phase — and the score is the mean of ``score_c`` over channels. It lies in
``[0, 1]``: 0 when every phase has the same mean (a phase-uniform output, e.g. nearest-neighbour upsampling), 1 for a
pure period-``s`` pattern (a perfect checkerboard). Only the mean response per phase counts, so content that is not
aligned to the grid contributes little; on a finite sample that little is about ``s/√(pixels per channel)``, so
compare scores measured on the same images. Pixels can be masked out (e.g. ``ignore_index`` padding).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def phase_index(height: int, width: int, period: int, device: torch.device | None = None) -> Tensor:
    """``H×W`` tensor of phase numbers ``(h mod s)·s + (w mod s)``."""
    rows = torch.arange(height, device=device) % period
    cols = torch.arange(width, device=device) % period
    return rows[:, None] * period + cols[None, :]


class CheckerboardScore(Metric):
    """Streaming checkerboard score (see the module docstring) of maps ``N×C×H×W`` with an optional ``N×H×W`` mask."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, period: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if period < 1:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period
        phases = period * period
        # Sums in float64: logits over a whole test set, squared, lose digits in float32.
        self.add_state("count", torch.zeros(phases, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("phase_sum", torch.zeros(0, phases, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sum_of_squares", torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, maps: Tensor, valid: Tensor | None = None) -> None:
        n, channels, height, width = maps.shape
        if self.phase_sum.shape[0] == 0:
            self.phase_sum = torch.zeros(channels, self.period**2, dtype=torch.float64, device=maps.device)
            self.sum_of_squares = torch.zeros(channels, dtype=torch.float64, device=maps.device)
        weight = torch.ones(n, height, width, device=maps.device) if valid is None else valid.to(maps.dtype)
        phase = phase_index(height, width, self.period, maps.device).expand(n, height, width).reshape(-1)
        weight = weight.reshape(-1).double()
        values = maps.detach().double().permute(1, 0, 2, 3).reshape(channels, -1) * weight
        self.count += torch.zeros_like(self.count).index_add_(0, phase, weight)
        self.phase_sum += torch.zeros_like(self.phase_sum).index_add_(1, phase, values)
        self.sum_of_squares += (values * maps.detach().double().permute(1, 0, 2, 3).reshape(channels, -1)).sum(1)

    def compute(self) -> Tensor:
        total = self.count.sum()
        if total == 0:
            return torch.tensor(0.0)
        mean = self.phase_sum.sum(1) / total
        present = self.count > 0
        phase_mean = self.phase_sum[:, present] / self.count[present]
        between = (self.count[present] * (phase_mean - mean[:, None]) ** 2).sum(1)
        total_variation = self.sum_of_squares - total * mean**2
        ratio = torch.where(total_variation > 0, between / total_variation.clamp_min(1e-300), torch.zeros_like(between))
        return ratio.clamp(0, 1).sqrt().mean().float()


def checkerboard_score(maps: Tensor, period: int, valid: Tensor | None = None) -> float:
    """One-shot :class:`CheckerboardScore` of ``maps`` (``N×C×H×W``)."""
    metric = CheckerboardScore(period)
    metric.update(maps, valid)
    return float(metric.compute())
