"""Lightning callbacks of a training run.

``RunStats``: seconds spent fitting (``train_seconds``), training throughput (images/s) and peak memory of a run.
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and the process's peak resident set size on a CPU,
reset at the start of each fit on Linux, so that every run of a sweep (all in one process) reports its own peak. On a
GPU the training batches are timed with CUDA events read once per epoch, so measuring never stalls the pipeline it
measures (a ``torch.cuda.synchronize`` per step would).

``SaveOnInterrupt``: a fit stopped by Ctrl-C (SIGINT) or SIGTERM (what SLURM sends before preempting a job) writes
``last.ckpt`` and says, in one line, how to resume from it — in a sweep, by the sweep's own command with
``resume=true``, which runs the job again from the start (:mod:`upseg.cli.resume` says why).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from upseg.cli.task import in_multirun

PROC_SELF = Path("/proc/self")


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set size to its current one; False where the system cannot.

    Linux (≥ 4.0) resets ``VmHWM`` when 5 is written to ``/proc/self/clear_refs``; that touches no page and no
    reclaim state (1–4 would clear referenced or soft-dirty bits)."""
    try:
        (PROC_SELF / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set size in MiB since the last :func:`reset_peak_rss` (Linux's ``VmHWM``); elsewhere, or
    without ``/proc``, the process's lifetime peak (``ru_maxrss``)."""
    try:
        for line in (PROC_SELF / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()


class IntervalTimer:
    """Sums the durations of many ``start()``/``stop()`` intervals. On a CUDA device each mark is an event recorded
    on the current stream, and the durations are read only in :meth:`seconds` (which waits for the last event); on a
    CPU marks are ``time.perf_counter()``."""

    def __init__(self) -> None:
        self.total = 0.0
        self._open: Any = None
        self._pending: list[tuple[Any, Any]] = []

    def _mark(self, device: torch.device) -> Any:
        if device.type != "cuda":
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self, device: torch.device) -> None:
        self._open = self._mark(device)

    def stop(self, device: torch.device) -> None:
        if self._open is None:
            return
        end = self._mark(device)
        if isinstance(end, float):
            self.total += end - self._open
        else:
            self._pending.append((self._open, end))
        self._open = None

    def seconds(self) -> float:
        if self._pending:
            self._pending[-1][1].synchronize()  # events complete in order: the last one done means all are
            self.total += sum(start.elapsed_time(end) for start, end in self._pending) / 1000
            self._pending.clear()
        return self.total


class RunStats(L.Callback):
    """Measures ``train_seconds`` (whole fit), ``train_images_per_second`` (training batches only) and memory."""

    def __init__(self) -> None:
        self.fit_seconds = 0.0
        self.train_images = 0
        self.batches = IntervalTimer()
        self._fit_start = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        else:
            reset_peak_rss()  # a sweep runs every job in one process: each run measures its own peak
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds += time.perf_counter() - self._fit_start

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.batches.start(pl_module.device)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.batches.stop(pl_module.device)
        self.train_images += len(batch[0]) * trainer.world_size

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.batches.seconds()  # resolve the epoch's events once, so they do not pile up

    @property
    def train_seconds(self) -> float:
        return self.batches.seconds()

    def summary(self, device: torch.device) -> dict[str, float]:
        seconds = self.train_seconds
        return {
            "train_seconds": round(self.fit_seconds, 2),
            "train_images_per_second": round(self.train_images / seconds, 2) if seconds else 0.0,
            "peak_memory_mb": round(peak_memory_mb(device), 1),
        }


def resume_command(checkpoint: Path) -> str:
    """The command line of this run with ``ckpt_path`` set to ``checkpoint`` (the run's own overrides kept)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = []
    if HydraConfig.initialized():
        overrides = [item for item in HydraConfig.get().overrides.task if not item.startswith("ckpt_path=")]
    return " ".join(["python scripts/train.py", *overrides, f"ckpt_path={checkpoint}"])


def resume_advice(checkpoint: Path) -> str:
    """How to go on after an interrupted fit: a sweep's job, with the sweep; a single run, from ``checkpoint``."""
    if in_multirun():
        return "this sweep job runs again from the start when the sweep's command is run again with resume=true"
    return f"resume with: {resume_command(checkpoint)}"


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM during fitting: save ``<dirpath>/last.ckpt`` (weights, optimizer, loop and callback
    states: a complete resume point) and print one line with the command that resumes."""

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != TrainerFn.FITTING or not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path, weights_only=False)  # everything, not only the weights: a resume point
        if trainer.is_global_zero:
            what = "Ctrl-C" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
            print(
                f"interrupted by {what} in epoch {trainer.current_epoch} after {trainer.global_step} optimizer steps; "
                f"saved {path}; {resume_advice(path)}",
                file=sys.stderr,
                flush=True,
            )
