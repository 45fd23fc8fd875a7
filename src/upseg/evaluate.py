"""Evaluate a checkpoint: rebuild the model from it alone, test one split at full resolution, write the results.

Writes to the run directory ``metrics.json`` (``<split>/mIoU``, ``<split>/bIoU``, ``<split>/mDice``, pixel accuracy,
mean class accuracy, per-class IoU, boundary IoU and Dice by class name, for two classes ``<split>/binary/...``
(Dice, sensitivity, specificity, accuracy and AUC of class 1), the confusion matrix, the checkerboard score),
``per_image.csv`` (see :mod:`upseg.results`), ``confusion_matrix.png`` and ``predictions.png``. The Trainer is the
run's ``trainer`` config on one device, without logger, checkpoints or callbacks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Subset

from upseg.checkpoints import read_checkpoint
from upseg.data.datamodule import SegmentationDataModule
from upseg.errors import ConfigError, UpsegError
from upseg.module import SegmentationModule
from upseg.plots import default_palette, plot_confusion_matrix, plot_predictions
from upseg.results import write_metrics, write_per_image
from upseg.train import check_trainer, scalar, test_summary
from upseg.validation import build, check_config

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
BINARY = ("Dice", "sensitivity", "specificity", "accuracy", "AUC")


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


def evaluation_data(cfg: DictConfig, module: SegmentationModule, split: str) -> SegmentationDataModule:
    """The datamodule with ``split`` set up as it is served for evaluation (the training split without
    augmentation)."""
    datamodule: SegmentationDataModule = instantiate(data_config(cfg, module))
    if datamodule.num_classes != module.hparams.num_classes:
        raise ConfigError(
            f"the checkpoint predicts {module.hparams.num_classes} classes but the data has {datamodule.num_classes}; "
            "evaluate on the dataset it was trained on"
        )
    datamodule.setup("test" if split == "test" else "fit")
    if split == "train":
        datamodule.datasets["train"].transform = datamodule.eval_transform
    return datamodule


def evaluation_trainer(cfg: DictConfig) -> L.Trainer:
    """The ``trainer`` config on one device: no logger, checkpoints, callbacks or model summary."""
    return build(
        cfg.trainer,
        "trainer",
        devices=1,
        num_nodes=1,
        strategy="auto",
        sync_batchnorm=False,
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_model_summary=False,
    )


def predict_examples(
    trainer: L.Trainer, module: SegmentationModule, datamodule: SegmentationDataModule, split: str, count: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The first ``count`` images of ``split`` with ground truth and the model's prediction (one per batch, so each
    keeps its own size)."""
    raw = datamodule.raw_dataset(split)
    first = range(min(count, len(raw)))
    loader = DataLoader(Subset(datamodule.datasets[split], list(first)), batch_size=1)
    predictions = trainer.predict(module, dataloaders=loader)
    images, targets = zip(*(raw[index] for index in first), strict=True) if first else ((), ())
    return (
        [np.asarray(image) for image in images],
        [np.asarray(target) for target in targets],
        [prediction[0].cpu().numpy() for prediction in predictions],
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on ``cfg.split`` and write the results to ``cfg.paths.output_dir``."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    split = cfg.split
    if split not in SPLITS:
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    module = load_checkpoint(cfg.get("ckpt_path"))
    datamodule = evaluation_data(cfg, module, split)
    loader = datamodule.dataloader(split)
    trainer = evaluation_trainer(cfg)
    trainer.test(module, dataloaders=loader, verbose=False)
    metrics = {key: scalar(value) for key, value in trainer.callback_metrics.items() if key.startswith("test/")}
    result = evaluation_result(cfg, module, metrics, len(loader.dataset))

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(output_dir / "metrics.json", result)
    write_per_image(
        output_dir / "per_image.csv",
        module.test_per_image,
        module.class_names,
        lambda index: datamodule.sample_name(split, index),
    )
    title = f"{result['model']} · decoder={result['decoder']} · {split} mIoU {result[f'{split}/mIoU']:.4f}"
    plot_confusion_matrix(
        module.test_confusion_matrix.numpy(), module.class_names, output_dir / "confusion_matrix.png", title=title
    )
    palette = datamodule.palette if datamodule.palette is not None else default_palette(len(module.class_names))
    examples = predict_examples(trainer, module, datamodule, split, cfg.num_pictures)
    plot_predictions(*examples, palette, output_dir / "predictions.png", title=title)
    print_table(result, split, output_dir)
    return result


def evaluation_result(
    cfg: DictConfig, module: SegmentationModule, metrics: dict[str, Any], images: int
) -> dict[str, Any]:
    """What ``metrics.json`` holds: the checkpoint, split, model, and the test metrics under ``<split>/``."""
    split = cfg.split
    scores = {key.replace("test/", f"{split}/", 1): value for key, value in test_summary(metrics, "").items()}
    return {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "split": split,
        "decoder": module.hparams.decoder["name"],
        "model": module.hparams.network,
        "images": images,
        **scores,
        "class_names": module.class_names,
        "confusion_matrix": module.test_confusion_matrix.numpy().astype(int).tolist(),
    }


def print_table(result: dict[str, Any], split: str, output_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['model']} · decoder={result['decoder']} · {split} ({result['images']} images)")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("boundary IoU", justify="right")
    table.add_column("Dice", justify="right")
    boundary, dice = result[f"{split}/boundary_IoU"], result[f"{split}/Dice"]
    for name, iou in result[f"{split}/IoU"].items():
        table.add_row(name, f"{iou:.4f}", f"{boundary[name]:.4f}", f"{dice[name]:.4f}")
    table.add_section()
    means = (result[f"{split}/mIoU"], result[f"{split}/bIoU"], result[f"{split}/mDice"])
    table.add_row("mean", *(f"{value:.4f}" for value in means))
    for key in ("acc", "mAcc", "checkerboard", *(f"binary/{name}" for name in BINARY)):
        if f"{split}/{key}" in result:
            table.add_row(key, f"{result[f'{split}/{key}']:.4f}", "", "")
    console = Console()
    console.print(table)
    console.print(f"results in {output_dir}")
