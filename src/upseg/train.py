"""Fit, test the final weights and the best-by-validation checkpoint, and write the run's results — what
``scripts/train.py`` runs.

The final weights are the headline (``test/...`` in ``metrics.json``, ``per_image.csv``): a fixed training budget,
with no choice made on validation noise. The best checkpoint by ``val/mIoU`` is tested too (``best/test/...``,
``per_image_best.csv``) so that both can be reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from upseg.callbacks import RunStats
from upseg.checkpoints import read_checkpoint
from upseg.cost import forward_flops, inference_ms_per_image
from upseg.data.datamodule import SegmentationDataModule
from upseg.errors import ConfigError
from upseg.module import SegmentationModule
from upseg.results import PER_IMAGE_FILES, write_metrics, write_per_image
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


def build_module(model_cfg: DictConfig, datamodule: SegmentationDataModule) -> SegmentationModule:
    """The LightningModule of ``model_cfg`` for the label space of ``datamodule``: the data, not the model config,
    says how many classes there are and what they are called (``data.binary`` of Pets changes both)."""
    return build(model_cfg, "model", num_classes=datamodule.num_classes, class_names=datamodule.class_names)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (unless ``train=false``), test (unless ``test=false``) and return the run's metrics."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    if cfg.get("ckpt_path"):
        read_checkpoint(cfg.ckpt_path)  # weights only: refuses a file that would run code, before Lightning opens it
    L.seed_everything(cfg.seed, workers=True)

    datamodule: SegmentationDataModule = build(cfg.data, "data")
    model = build_module(cfg.model, datamodule)
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
    tests = run_tests(trainer, model, datamodule, cfg, best_ckpt) if cfg.test else {}

    summary: dict[str, Any] = {
        "decoder": cfg.decoder.name,
        "model": cfg.model.network,
        "data": cfg.data._target_.rsplit(".", 1)[-1],
        "seed": cfg.seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "val/mIoU": scalar(best_score) if best_score is not None else fit_metrics.get("val/mIoU"),
        "epochs": trainer.current_epoch,
        "headline": "final" if cfg.train else "ckpt_path",
        "best_ckpt": str(Path(best_ckpt).resolve()) if best_ckpt else None,
        "last_ckpt": str(Path(last_ckpt).resolve()) if last_ckpt else None,
    }
    stats = find_callback(trainer, RunStats)
    if stats is not None:
        summary.update(stats.summary(model.device))
    if cfg.test:
        summary.update(model_cost(model, datamodule))
    for name, result in tests.items():
        summary.update(test_summary(result.metrics, "" if name == "final" else f"{name}/"))

    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_metrics(output_dir / "metrics.json", summary)
        for name, result in tests.items():
            write_per_image(
                output_dir / PER_IMAGE_FILES[name],
                result.per_image,
                model.class_names,
                lambda index: datamodule.sample_name("test", index),
            )
        print_summary(summary, output_dir)
    return summary


@dataclass
class Evaluation:
    metrics: dict[str, Any]  # the test/* values the module logged
    per_image: dict[str, torch.Tensor]  # PerImageScores counts


def run_test(
    trainer: L.Trainer, model: SegmentationModule, datamodule: L.LightningDataModule, ckpt_path: str | None
) -> Evaluation:
    """Test the model's current weights (``ckpt_path=None``) or a checkpoint's."""
    trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = {key: scalar(value) for key, value in trainer.callback_metrics.items() if key.startswith("test/")}
    return Evaluation(metrics, model.test_per_image)


def run_tests(
    trainer: L.Trainer,
    model: SegmentationModule,
    datamodule: L.LightningDataModule,
    cfg: DictConfig,
    best_ckpt: str | None,
) -> dict[str, Evaluation]:
    """After training, the final weights (the headline) and the best-by-validation checkpoint; without training, the
    weights of ``ckpt_path``."""
    if not cfg.train:
        return {"final": run_test(trainer, model, datamodule, cfg.get("ckpt_path"))}
    results = {"final": run_test(trainer, model, datamodule, None)}
    if best_ckpt is None:
        log.warning("no best checkpoint was saved; only the final weights are tested")
    else:
        results["best"] = run_test(trainer, model, datamodule, best_ckpt)
    return results


def test_summary(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Scalar test metrics under ``{prefix}test/...``; per-class values as ``{prefix}test/IoU``,
    ``{prefix}test/boundary_IoU`` and ``{prefix}test/Dice`` mappings of class name → value."""
    out: dict[str, Any] = {}
    per_class = {"test/IoU/": "test/IoU", "test/bIoU/": "test/boundary_IoU", "test/Dice/": "test/Dice"}
    for key, value in metrics.items():  # as logged: per-class values in the order of the classes
        group = next((start for start in per_class if key.startswith(start)), None)
        if group is None:
            out[f"{prefix}{key}"] = value
        else:
            out.setdefault(f"{prefix}{per_class[group]}", {})[key.removeprefix(group)] = value
    return out


def model_cost(model: SegmentationModule, datamodule: L.LightningDataModule) -> dict[str, Any]:
    """FLOPs of one forward pass of one test image, and inference milliseconds per image on a test batch."""
    images, _ = next(iter(datamodule.test_dataloader()))
    images = images.to(model.device)
    model.eval()  # batch-norm statistics stay as trained
    return {
        "cost_input": "x".join(str(size) for size in images.shape[1:]),
        "gflops": round(forward_flops(model, images[:1]) / 1e9, 4),
        "inference_ms_per_image": round(inference_ms_per_image(model, images), 3),
    }


SUMMARY_ROWS = (
    "val/mIoU",
    "test/mIoU",
    "test/bIoU",
    "best/test/mIoU",
    "best/test/bIoU",
    "test/mDice",
    "test/binary/Dice",
    "test/binary/sensitivity",
    "test/binary/specificity",
    "test/binary/accuracy",
    "test/binary/AUC",
    "test/acc",
    "test/checkerboard",
    "parameters",
    "gflops",
    "epochs",
    "train_seconds",
    "train_images_per_second",
    "inference_ms_per_image",
    "peak_memory_mb",
)


def print_summary(summary: dict[str, Any], output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"upseg: {summary['model']} with decoder={summary['decoder']} (test/: final weights; best/: best by val)"
    table = Table(title=title, show_header=False)
    for key in SUMMARY_ROWS:
        value = summary.get(key)
        if value is not None:
            table.add_row(
                key,
                f"{value:.4f}"
                if isinstance(value, float) and key.startswith(("val/", "test/", "best/"))
                else str(value),
            )
    boundary = summary.get("test/boundary_IoU", {})
    for name, iou in summary.get("test/IoU", {}).items():
        table.add_row(f"  IoU / bIoU {name}", f"{iou:.4f} / {boundary.get(name, float('nan')):.4f}")
    table.add_row("outputs", str(output_dir))
    table.add_row("best checkpoint", str(summary.get("best_ckpt")))
    Console().print(table)
