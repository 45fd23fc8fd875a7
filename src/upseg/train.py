"""Fit, test the best checkpoint, and write ``metrics.json`` in the run directory — what ``scripts/train.py`` runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

import upseg.resolvers  # noqa: F401  (before any config is resolved: the data configs use them)
from upseg.callbacks import RunStats
from upseg.checkpoints import read_checkpoint
from upseg.errors import ConfigError
from upseg.slurm import check_slurm
from upseg.validation import build, check_config

log = logging.getLogger(__name__)
TERMINATED_STATUS = 128 + 15  # the shell's status for a process ended by SIGTERM


def check_trainer(trainer_cfg: DictConfig) -> None:
    """Stop at once, in one sentence, when the trainer asks for hardware that is not there."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but this machine has no usable CUDA GPU; "
            "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
        )
    if accelerator == "cpu" and trainer_cfg.get("sync_batchnorm"):
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel); "
            "add trainer.sync_batchnorm=false to run DDP on the CPU"
        )
    check_slurm(trainer_cfg)


def instantiate_all(group: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every entry of a config group such as ``callbacks`` or ``logger`` (a mapping of name → config)."""
    if not group:
        return []
    return [
        build(node, f"{key}.{name}")
        for name, node in group.items()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def find_callback(trainer: L.Trainer, kind: type) -> Any:
    return next((callback for callback in trainer.callbacks if isinstance(callback, kind)), None)


def best_checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The ModelCheckpoint that keeps the best checkpoint by a monitored metric (not the step checkpoints)."""
    return next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor), None)


def scalar(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (unless ``train=false``), test (unless ``test=false``) and return the run's metrics."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    if cfg.get("ckpt_path"):
        read_checkpoint(cfg.ckpt_path)  # weights only: refuses a file that would run code, before Lightning opens it
    L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = build(cfg.data, "data")
    model: L.LightningModule = build(cfg.model, "model", class_names=datamodule.class_names)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # so evaluate.py finds the same data
    loggers = instantiate_all(cfg.get("logger"), "logger")
    callbacks = instantiate_all(cfg.get("callbacks"), "callbacks")
    trainer: L.Trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers)
    for logger in loggers:
        logger.log_hyperparams(model.run_config)

    if cfg.train:
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        except SIGTERMException:
            # Lightning ends a fit on SIGTERM with SystemExit and no status, which would read as success.
            raise SystemExit(TERMINATED_STATUS) from None

    checkpoint = best_checkpoint_callback(trainer)
    # Read before testing: restoring a checkpoint for the test also restores the callback's older state.
    best_ckpt = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    last_ckpt = checkpoint.last_model_path if checkpoint is not None and checkpoint.last_model_path else None
    best_score = checkpoint.best_model_score if checkpoint is not None else None
    fit_metrics = {key: scalar(value) for key, value in trainer.callback_metrics.items()}
    if cfg.test:
        test_ckpt = best_ckpt if cfg.train else cfg.get("ckpt_path")
        if cfg.train and test_ckpt is None:
            log.warning("no best checkpoint was saved; testing the weights at the end of training")
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=True)
    test_metrics = {key: scalar(value) for key, value in trainer.callback_metrics.items() if key.startswith("test/")}

    summary: dict[str, Any] = {
        "decoder": cfg.decoder.name,
        "model": cfg.model.network,
        "data": cfg.data._target_.rsplit(".", 1)[-1],
        "seed": cfg.seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "val/mIoU": scalar(best_score) if best_score is not None else fit_metrics.get("val/mIoU"),
        "epochs": trainer.current_epoch,
        "best_ckpt": str(Path(best_ckpt).resolve()) if best_ckpt else None,
        "last_ckpt": str(Path(last_ckpt).resolve()) if last_ckpt else None,
    }
    stats = find_callback(trainer, RunStats)
    if stats is not None:
        summary.update(stats.summary(model.device))
    summary.update({key: value for key, value in sorted(test_metrics.items()) if not key.startswith("test/IoU/")})
    summary["test/IoU"] = {
        key.removeprefix("test/IoU/"): value for key, value in test_metrics.items() if key.startswith("test/IoU/")
    }

    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        print_summary(summary, output_dir)
    return summary


SUMMARY_ROWS = (
    "val/mIoU",
    "test/mIoU",
    "test/acc",
    "test/checkerboard",
    "parameters",
    "epochs",
    "train_seconds",
    "train_images_per_second",
    "peak_memory_mb",
)


def print_summary(summary: dict[str, Any], output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"upseg: {summary['model']} with decoder={summary['decoder']}", show_header=False)
    for key in SUMMARY_ROWS:
        value = summary.get(key)
        if value is not None:
            table.add_row(
                key, f"{value:.4f}" if isinstance(value, float) and key.startswith(("val/", "test/")) else str(value)
            )
    for name, iou in summary.get("test/IoU", {}).items():
        table.add_row(f"  IoU {name}", f"{iou:.4f}")
    table.add_row("outputs", str(output_dir))
    table.add_row("best checkpoint", str(summary.get("best_ckpt")))
    Console().print(table)
