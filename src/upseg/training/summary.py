"""A training run's summary — what ``metrics.json`` holds and the table printed at the end — assembled from the run
and rendered from the metric catalogue (:mod:`upseg.metrics.catalogue`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from upseg.analysis.cost import forward_flops, inference_ms_per_image
from upseg.metrics.catalogue import COST_COLUMNS, Column, formatted, metric_columns, specs
from upseg.models import decoder_label
from upseg.training.callbacks import RunStats
from upseg.training.module import SegmentationModule
from upseg.training.testing import CheckpointState, Evaluation


def model_cost(module: SegmentationModule, datamodule: L.LightningDataModule) -> dict[str, Any]:
    """FLOPs of one forward pass of one test image, and inference milliseconds per image on a test batch."""
    images = next(iter(datamodule.test_dataloader())).images.to(module.device)
    module.eval()  # batch-norm statistics stay as trained
    return {
        "cost_input": "x".join(str(size) for size in images.shape[1:]),
        "gflops": round(forward_flops(module, images[:1]) / 1e9, 4),
        "inference_ms_per_image": round(inference_ms_per_image(module, images), 3),
    }


def run_summary(
    cfg: DictConfig,
    module: SegmentationModule,
    trainer: L.Trainer,
    checkpoints: CheckpointState,
    tests: dict[str, Evaluation],
    cost: dict[str, Any],
    last_val_miou: float | None,
) -> dict[str, Any]:
    """The run's identity, best validation score (the last one where no checkpoint kept a best), epochs,
    checkpoints, run statistics, cost and test metrics (the best checkpoint's under ``best/``)."""
    stats = next((callback for callback in trainer.callbacks if isinstance(callback, RunStats)), None)
    summary: dict[str, Any] = {
        "decoder": decoder_label(cfg.decoder),
        "model": cfg.model.net.name,
        "data": cfg.data._target_.rsplit(".", 1)[-1],
        "seed": cfg.seed,
        "parameters": sum(p.numel() for p in module.parameters()),
        "val/mIoU": checkpoints.best_score if checkpoints.best_score is not None else last_val_miou,
        "epochs": trainer.current_epoch,
        "headline": "final" if cfg.train else "ckpt_path",
        "inference": module.inference.describe(),
        "best_ckpt": checkpoints.best,
        "last_ckpt": checkpoints.last,
        **(stats.summary(module.device) if stats is not None else {}),
        **cost,
    }
    for name, result in tests.items():
        summary.update({f"{'' if name == 'final' else f'{name}/'}{key}": v for key, v in result.metrics.items()})
    return summary


def print_summary(summary: dict[str, Any], output_dir: Path) -> None:
    """The summary as one table: the catalogue's scalar metrics, cost, then per class its per-class metrics."""
    from rich.console import Console
    from rich.table import Table

    title = f"upseg: {summary['model']} with decoder={summary['decoder']} (final: final weights; best: best by val)"
    table = Table(title=title, show_header=False)
    for column in [*metric_columns(), *COST_COLUMNS, Column("epochs", "epochs", 0)]:
        if summary.get(column.key) is not None:
            table.add_row(column.label, formatted(summary[column.key], column.digits))
    per_class = [spec for spec in specs(per_class=True) if f"test/{spec.key}" in summary]
    names = list(summary[f"test/{per_class[0].key}"]) if per_class else []
    for name in names:
        values = [summary[f"test/{spec.key}"].get(name, float("nan")) for spec in per_class]
        table.add_row(
            f"  {name}: {' / '.join(spec.label for spec in per_class)}",
            " / ".join(formatted(value, spec.digits) for value, spec in zip(values, per_class, strict=True)),
        )
    table.add_row("outputs", str(output_dir))
    table.add_row("best checkpoint", str(summary.get("best_ckpt")))
    Console().print(table)
