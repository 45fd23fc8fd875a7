"""Pixel-wise cross-entropy, optionally class-weighted.

With weights ``w`` the loss is ``Σ_p w_{y_p} · (−log softmax(z_p)_{y_p}) / Σ_p w_{y_p}`` over the pixels ``p`` whose
target ``y_p`` is not ``ignore_index`` (PyTorch's weighted mean). ``class_weights``: ``None`` (all 1), a list of
``num_classes`` numbers, or ``"balanced"``: ``w_c = n / (C · n_c)`` from the training set's pixel counts ``n_c``
(``n`` all counted pixels; scikit-learn's "balanced"; 0 for a class with no pixel), computed when fitting starts and
kept in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError


def balanced_class_weights(masks: Iterable[np.ndarray], num_classes: int, ignore_index: int) -> Tensor:
    """``n / (C · n_c)`` from the pixel counts of ``masks`` (``H×W`` class indices); 0 for absent classes."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for mask in masks:
        values = np.asarray(mask).reshape(-1)
        values = values[values != ignore_index]
        counts += np.bincount(values, minlength=num_classes)[:num_classes]
    weights = np.divide(counts.sum(), num_classes * counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.from_numpy(weights).float()


class CrossEntropy(nn.Module):
    """See the module docstring."""

    def __init__(
        self, num_classes: int, ignore_index: int = 255, class_weights: str | Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.needs_class_frequencies = class_weights == "balanced"
        self.weighted = class_weights is not None
        if class_weights is None or self.needs_class_frequencies:
            weights = torch.ones(num_classes)  # balanced: replaced by set_class_weights when fitting starts
        elif isinstance(class_weights, str) or len(class_weights) != num_classes or min(class_weights) < 0:
            raise ConfigError(
                f"loss.class_weights must be null, balanced or {num_classes} non-negative numbers (one per class), "
                f"got {class_weights!r}"
            )
        else:
            weights = torch.tensor([float(w) for w in class_weights])
        self.register_buffer("class_weights", weights)

    def set_class_weights(self, weights: Tensor) -> None:
        self.class_weights.copy_(weights)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        weight = self.class_weights.to(logits.dtype) if self.weighted else None
        return F.cross_entropy(logits, target, weight=weight, ignore_index=self.ignore_index)
