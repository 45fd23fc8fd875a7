"""Soft Dice loss, and its sum with cross-entropy.

With ``p = softmax(z)`` over classes, ``g`` the one-hot target and ``v`` the pixels whose target is not
``ignore_index``, per class ``c`` over the whole batch

    D_c = (2 Σ_p v_p p_pc g_pc + ε) / (Σ_p v_p (p_pc + g_pc) + ε),      loss = 1 − mean_c D_c,

with ``ε = smooth`` (1 by default) so that a class absent from both target and prediction scores 1. A perfect
prediction gives 0, a fully wrong one about 1. Dice weighs every class equally however few its pixels — the reason
to use it for thin structures such as vessels; ``CrossEntropyDice`` adds ``ce_weight · CE + dice_weight · Dice``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.losses.cross_entropy import CrossEntropy


class Dice(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int, ignore_index: int = 255, smooth: float = 1.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.smooth = smooth

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        probabilities = logits.to(torch.promote_types(logits.dtype, torch.float32)).softmax(1)  # bf16 sums drift
        valid = (target != self.ignore_index).unsqueeze(1)
        # Ignored pixels get class 0 in the one-hot target; `valid` zeroes them out of every sum.
        one_hot = F.one_hot(torch.where(valid[:, 0], target, 0), self.num_classes).permute(0, 3, 1, 2)
        probabilities = probabilities * valid
        one_hot = one_hot * valid
        dims = (0, 2, 3)
        intersection = (probabilities * one_hot).sum(dims)
        total = probabilities.sum(dims) + one_hot.sum(dims)
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        return 1 - dice.mean()


class CrossEntropyDice(nn.Module):
    """``ce_weight · CrossEntropy + dice_weight · Dice``."""

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        class_weights: str | Sequence[float] | None = None,
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        self.cross_entropy = CrossEntropy(num_classes, ignore_index, class_weights)
        self.dice = Dice(num_classes, ignore_index, smooth)
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.needs_class_frequencies = self.cross_entropy.needs_class_frequencies

    def set_class_weights(self, weights: Tensor) -> None:
        self.cross_entropy.set_class_weights(weights)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.ce_weight * self.cross_entropy(logits, target) + self.dice_weight * self.dice(logits, target)
