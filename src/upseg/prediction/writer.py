"""Lightning's ``BasePredictionWriter`` for ``predict.py``: per predicted image, its files (:mod:`.outputs`) as each
batch ends, so that nothing accumulates in memory and every process of a multi-GPU run writes its own share.

A sample whose file could not be read (its :class:`~upseg.data.unlabeled.ImageSample` carries the error) is named in
one line and counted; the count, summed over processes, is :attr:`MaskWriter.failed` once prediction has ended.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from upseg.data.unlabeled import ImageSample, read_image
from upseg.prediction.outputs import save_mask, save_overlay
from upseg.prediction.predictor import logits_at_size

log = logging.getLogger(__name__)


class MaskWriter(BasePredictionWriter):
    """Writes ``<name>.png`` (and ``<name>_overlay.jpg``, ``<name>_probabilities.npy`` if asked) into ``folder`` for
    input ``files[i]`` under ``names[i]``."""

    def __init__(
        self,
        folder: Path,
        files: list[Path],
        names: list[str],
        palette: np.ndarray,
        overlay: bool = False,
        probabilities: bool = False,
    ) -> None:
        super().__init__(write_interval="batch")
        self.folder, self.files, self.names, self.palette = folder, files, names, palette
        self.overlay, self.probabilities = overlay, probabilities
        self.failed = 0  # this process's until prediction ends, then every process's
        self.written = 0

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: torch.Tensor | None,
        batch_indices: Any,
        batch: ImageSample,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch.error is not None or prediction is None:
            self.failed += 1
            print(f"skipped: {batch.error}", file=sys.stderr, flush=True)
            return
        name, size = self.names[batch.index], tuple(batch.size)
        logits = logits_at_size(prediction, size)[0]
        mask = logits.argmax(0).cpu().numpy()
        save_mask(mask, self.palette, self.folder / f"{name}.png")
        if self.overlay:
            save_overlay(read_image(self.files[batch.index]), mask, self.palette, self.folder / f"{name}_overlay.jpg")
        if self.probabilities:
            np.save(self.folder / f"{name}_probabilities.npy", logits.softmax(0).float().cpu().numpy())
        self.written += 1

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_epoch_end(trainer, pl_module)
        counts = torch.tensor([self.failed, self.written], device=pl_module.device)
        self.failed, self.written = (int(n) for n in trainer.strategy.reduce(counts, reduce_op="sum").tolist())
