"""Losses of the ``loss`` config group: ``ce`` (optionally class-weighted), ``dice``, ``ce_dice`` and ``focal``.

Every loss is built as ``Loss(num_classes, ignore_index, **options)`` and called as ``loss(logits N×C×H×W,
target N×H×W int64) → scalar``; pixels whose target is ``ignore_index`` contribute nothing, to the value or the
gradient. A new loss is one class here plus one ``configs/loss/<name>.yaml`` naming it in ``_target_``.
"""

from upseg.losses.cross_entropy import CrossEntropy, balanced_class_weights
from upseg.losses.dice import CrossEntropyDice, Dice
from upseg.losses.focal import Focal

__all__ = ["CrossEntropy", "CrossEntropyDice", "Dice", "Focal", "balanced_class_weights"]
