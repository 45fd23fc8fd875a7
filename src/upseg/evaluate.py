"""Evaluate a checkpoint: rebuild the model from it alone, test one split at full resolution, write the results.

Writes to the run directory ``metrics.json`` (``<split>/mIoU``, pixel accuracy, mean class accuracy, per-class IoU by
class name, the confusion matrix, the checkerboard score), ``confusion_matrix.png`` and ``predictions.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from upseg.checkpoints import read_checkpoint
from upseg.data.datamodule import SegmentationDataModule
from upseg.errors import ConfigError, UpsegError
from upseg.module import SegmentationModule
from upseg.plots import default_palette, plot_confusion_matrix, plot_predictions
from upseg.train import check_trainer, scalar
from upseg.validation import check_config

log = logging.getLogger(__name__)


def load_checkpoint(path: str | None) -> SegmentationModule:
    """The module a checkpoint holds, read as weights only (:mod:`upseg.checkpoints`); a missing, unreadable or
    code-carrying file is one clear :class:`UpsegError`."""
    if not path:
        raise ConfigError("ckpt_path is required: python scripts/evaluate.py ckpt_path=<run>/checkpoints/<file>.ckpt")
    read_checkpoint(path)  # refuses a file that would run code, before Lightning opens it
    try:
        return SegmentationModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a checkpoint of another module
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UpsegError(f"ckpt_path {path} is not a readable upseg checkpoint ({reason})") from error


def data_config(cfg: DictConfig, module: SegmentationModule) -> Any:
    """``data=...`` if given, else the data the checkpoint was trained on."""
    if cfg.get("data") is not None:
        return cfg.data
    if module.run_config is None or "data" not in module.run_config:
        raise ConfigError("this checkpoint does not record its dataset; say which with data=<name> (e.g. data=shapes)")
    return OmegaConf.create(module.run_config["data"])


def predict_examples(
    module: SegmentationModule, datamodule: SegmentationDataModule, split: str, count: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The first ``count`` images of ``split`` with ground truth and the model's prediction."""
    raw = datamodule.raw_dataset(split)
    transformed = datamodule.datasets[split]
    images, targets, predictions = [], [], []
    module.eval()
    with torch.no_grad():
        for index in range(min(count, len(raw))):
            image, target = raw[index]
            tensor, _ = transformed[index]
            logits = module(tensor.unsqueeze(0).to(module.device))
            images.append(np.asarray(image))
            targets.append(np.asarray(target))
            predictions.append(logits.argmax(1)[0].cpu().numpy())
    return images, targets, predictions


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on ``cfg.split`` and write metrics.json and pictures to ``cfg.paths.output_dir``."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    module = load_checkpoint(cfg.get("ckpt_path"))
    split = cfg.split
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    datamodule: SegmentationDataModule = instantiate(data_config(cfg, module))
    if datamodule.num_classes != module.hparams.num_classes:
        raise ConfigError(
            f"the checkpoint predicts {module.hparams.num_classes} classes but the data has {datamodule.num_classes}; "
            "evaluate on the dataset it was trained on"
        )
    datamodule.setup("test" if split == "test" else "fit")
    # Evaluate the training split as it is served for evaluation: no augmentation.
    if split == "train":
        datamodule.datasets["train"].transform = datamodule.eval_transform
    loader = datamodule.dataloader(split)

    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=cfg.trainer.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=bool(cfg.trainer.get("enable_progress_bar", True)),
        enable_model_summary=False,
    )
    trainer.test(module, dataloaders=loader, verbose=False)
    metrics = {key: scalar(value) for key, value in trainer.callback_metrics.items()}
    matrix = module.test_confusion_matrix.numpy()
    names = module.class_names

    result: dict[str, Any] = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "split": split,
        "decoder": module.hparams.decoder["name"],
        "model": module.hparams.network,
        "images": len(loader.dataset),
        f"{split}/mIoU": metrics["test/mIoU"],
        f"{split}/acc": metrics["test/acc"],
        f"{split}/mAcc": metrics["test/mAcc"],
        f"{split}/loss": metrics["test/loss"],
        f"{split}/checkerboard": metrics["test/checkerboard"],
        f"{split}/IoU": {name: metrics[f"test/IoU/{name}"] for name in names},
        "class_names": names,
        "confusion_matrix": matrix.astype(int).tolist(),
    }
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    title = f"{result['model']} · decoder={result['decoder']} · {split} mIoU {result[f'{split}/mIoU']:.4f}"
    plot_confusion_matrix(matrix, names, output_dir / "confusion_matrix.png", title=title)
    palette = datamodule.palette if datamodule.palette is not None else default_palette(len(names))
    plot_predictions(
        *predict_examples(module, datamodule, split, cfg.num_pictures),
        palette,
        output_dir / "predictions.png",
        title=title,
    )
    print_table(result, split, output_dir)
    return result


def print_table(result: dict[str, Any], split: str, output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['model']} · decoder={result['decoder']} · {split} ({result['images']} images)")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in result[f"{split}/IoU"].items():
        table.add_row(name, f"{iou:.4f}")
    table.add_section()
    for key in ("mIoU", "acc", "mAcc", "checkerboard"):
        table.add_row(key, f"{result[f'{split}/{key}']:.4f}")
    console = Console()
    console.print(table)
    console.print(f"results in {output_dir}")
