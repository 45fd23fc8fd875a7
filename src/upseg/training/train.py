"""Train one run — what ``scripts/train.py`` runs: check the config, seed, build, fit, test the final weights and
the best-by-validation checkpoint, and write and print the results.

In a resumed sweep (``resume=true``, :mod:`upseg.cli.resume`) a job whose earlier run is complete returns that run's
summary and trains nothing. ``metrics.json`` records the job's overrides, which is how a resumed sweep knows it.

The final weights are the headline (``test/...`` in ``metrics.json``, ``per_image.csv``): a fixed training budget,
with no choice made on validation noise. The best checkpoint by ``val/mIoU`` is tested too (``best/test/...``,
``per_image_best.csv``) so that both can be reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from upseg.cli.resume import earlier_result, job_overrides
from upseg.cli.validation import check_config, check_trainer
from upseg.metrics.results import PER_IMAGE_FILES, write_metrics, write_per_image
from upseg.planning import plan_run
from upseg.training.build import Run, build_run
from upseg.training.checkpoints import read_checkpoint
from upseg.training.summary import model_cost, print_summary, run_summary
from upseg.training.testing import CheckpointState, Evaluation, run_tests


def check_run(cfg: DictConfig) -> None:
    """Every check that can fail before anything is built: config values, hardware, the checkpoint to resume."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    if cfg.get("ckpt_path"):
        read_checkpoint(cfg.ckpt_path)  # weights only: refuses a file that would run code, before Lightning opens it


def fit(run: Run, ckpt_path: str | None) -> None:
    """``trainer.fit``, resuming from ``ckpt_path`` when given (read weights-only)."""
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=ckpt_path, weights_only=True)


def write_results(output_dir: Path, summary: dict[str, Any], tests: dict[str, Evaluation], run: Run) -> None:
    """``metrics.json`` and the per-image file of every test in ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(output_dir / "metrics.json", summary)
    for name, result in tests.items():
        write_per_image(
            output_dir / PER_IMAGE_FILES[name],
            result.per_image,
            run.module.class_names,
            lambda index: run.datamodule.sample_name("test", index),
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (unless ``train=false``), test (unless ``test=false``) and return the run's summary."""
    earlier = earlier_result(cfg)
    if earlier is not None:
        return earlier
    check_run(cfg)
    if cfg.get("plan"):  # experiment=auto: crop, batch, loss, split, … planned from the dataset, the user's keys kept
        cfg, _ = plan_run(cfg, Path(cfg.paths.output_dir))
        check_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    run = build_run(cfg)
    if cfg.train:
        fit(run, cfg.get("ckpt_path"))
    checkpoints = CheckpointState.of(run.trainer)
    last_val_miou = run.trainer.callback_metrics.get("val/mIoU")  # before testing replaces the logged metrics
    last_val_miou = last_val_miou.item() if last_val_miou is not None else None
    tests = {}
    if cfg.test:
        tests = run_tests(run.trainer, run.module, run.datamodule, cfg.train, checkpoints.best, cfg.get("ckpt_path"))
    cost = model_cost(run.module, run.datamodule) if cfg.test else {}
    summary = run_summary(cfg, run.module, run.trainer, checkpoints, tests, cost, last_val_miou)
    summary["overrides"] = job_overrides()
    if run.trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        write_results(output_dir, summary, tests, run)
        print_summary(summary, output_dir)
    return summary
