"""``RunStats``: seconds spent fitting (``train_seconds``), training throughput (images/s) and peak memory of a run.

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and the process's peak resident set size on a CPU.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import lightning as L
import torch


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class RunStats(L.Callback):
    """Measures ``train_seconds`` (whole fit), ``train_images_per_second`` (training batches only) and memory."""

    def __init__(self) -> None:
        self.fit_seconds = 0.0
        self.train_seconds = 0.0
        self.train_images = 0
        self._fit_start = 0.0
        self._batch_start = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds += time.perf_counter() - self._fit_start

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self.train_seconds += time.perf_counter() - self._batch_start
        self.train_images += len(batch[0]) * trainer.world_size

    def summary(self, device: torch.device) -> dict[str, float]:
        return {
            "train_seconds": round(self.fit_seconds, 2),
            "train_images_per_second": round(self.train_images / self.train_seconds, 2) if self.train_seconds else 0.0,
            "peak_memory_mb": round(peak_memory_mb(device), 1),
        }
