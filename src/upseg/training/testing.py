"""Testing after training: the final weights (the headline) and the best-by-validation checkpoint, each as an
:class:`Evaluation` of the logged test metrics and the per-image counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from upseg.metrics.catalogue import nest
from upseg.training.module import SegmentationModule

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    metrics: dict[str, Any]  # the test/* values the module logged, in the metrics.json form (catalogue.nest)
    per_image: dict[str, Tensor]  # PerImageScores counts


@dataclass(frozen=True)
class CheckpointState:
    """What the best-checkpoint callback kept: the best and last checkpoints and the best monitored score."""

    best: str | None
    last: str | None
    best_score: float | None

    @classmethod
    def of(cls, trainer: L.Trainer) -> CheckpointState:
        """Read before testing: restoring a checkpoint for the test also restores the callback's older state."""
        callback = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor), None)
        if callback is None:
            return cls(None, None, None)
        score = callback.best_model_score
        return cls(
            str(Path(callback.best_model_path).resolve()) if callback.best_model_path else None,
            str(Path(callback.last_model_path).resolve()) if callback.last_model_path else None,
            score.item() if score is not None else None,
        )


def run_test(
    trainer: L.Trainer, module: SegmentationModule, datamodule: L.LightningDataModule, ckpt_path: str | None
) -> Evaluation:
    """Test the module's current weights (``ckpt_path=None``) or a checkpoint's."""
    trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    logged = {key: value for key, value in trainer.callback_metrics.items() if key.startswith("test/")}
    return Evaluation(nest(logged), module.test_per_image)


def run_tests(
    trainer: L.Trainer,
    module: SegmentationModule,
    datamodule: L.LightningDataModule,
    trained: bool,
    best_ckpt: str | None,
    ckpt_path: str | None = None,
) -> dict[str, Evaluation]:
    """After training, the final weights and the best checkpoint; without training, the weights of ``ckpt_path``."""
    if not trained:
        return {"final": run_test(trainer, module, datamodule, ckpt_path)}
    results = {"final": run_test(trainer, module, datamodule, None)}
    if best_ckpt is None:
        log.warning("no best checkpoint was saved; only the final weights are tested")
    else:
        results["best"] = run_test(trainer, module, datamodule, best_ckpt)
    return results
