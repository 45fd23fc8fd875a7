"""Focal loss (Lin et al., 2017): cross-entropy that down-weights pixels the model already gets right.

Per pixel ``p`` with target ``y`` not ``ignore_index`` and ``q = softmax(z_p)_y``: ``−α_y (1 − q)^γ log q``; the loss
is the mean over those pixels. ``γ = 0`` and no ``alpha`` is plain cross-entropy; ``alpha`` is an optional list of
``num_classes`` class weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError


class Focal(nn.Module):
    """See the module docstring."""

    def __init__(
        self, num_classes: int, ignore_index: int = 255, gamma: float = 2.0, alpha: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"loss.gamma must be 0 or more, got {gamma}")
        if alpha is not None and len(alpha) != num_classes:
            raise ConfigError(f"loss.alpha must have {num_classes} numbers (one per class), got {list(alpha)}")
        self.ignore_index = ignore_index
        self.gamma = gamma
        self.register_buffer("alpha", torch.tensor(alpha).float() if alpha is not None else torch.ones(num_classes))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        valid = target != self.ignore_index
        safe_target = torch.where(valid, target, 0)
        log_q = (
            F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), 1)
            .gather(1, safe_target.unsqueeze(1))
            .squeeze(1)
        )
        loss = -self.alpha[safe_target] * (1 - log_q.exp()) ** self.gamma * log_q
        count = valid.sum()
        return torch.where(valid, loss, 0).sum() / count.clamp_min(1)
