"""Evaluate a checkpoint: rebuild the model from it alone, test one split at full resolution, write the results.

The network runs as the ``inference`` config says (whole images by default; sliding windows, flips, scales:
:mod:`upseg.inference`), as in the test after training and in ``predict.py``.

Writes to the run directory ``metrics.json`` (every metric of the catalogue, :mod:`upseg.metrics.catalogue`, under
``<split>/``, per-class ones as ``{class name: value}``; the confusion matrix), ``per_image.csv`` (see
:mod:`upseg.metrics.results`), ``confusion_matrix.png`` and ``predictions.png``, and prints the catalogue's table.
The Trainer is the run's ``trainer`` config on one device, without logger, checkpoints or callbacks.
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

from upseg.cli.validation import build, check_config, check_trainer
from upseg.data.datamodule import SegmentationDataModule, pad_collate
from upseg.errors import ConfigError
from upseg.evaluation.pictures import default_palette, plot_confusion_matrix, plot_predictions
from upseg.metrics.catalogue import formatted, nest, specs
from upseg.metrics.results import write_metrics, write_per_image
from upseg.models import decoder_label
from upseg.training.checkpoints import module_from_checkpoint
from upseg.training.module import SegmentationModule

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def load_checkpoint(path: str | None) -> SegmentationModule:
    """The module a checkpoint holds, read as weights only (:mod:`upseg.training.checkpoints`); a missing, unreadable or
    code-carrying file is one clear :class:`UpsegError`."""
    if not path:
        raise ConfigError("ckpt_path is required: python scripts/evaluate.py ckpt_path=<run>/checkpoints/<file>.ckpt")
    return module_from_checkpoint(path)


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
    loader = DataLoader(
        Subset(datamodule.datasets[split], list(first)), batch_size=1, collate_fn=pad_collate(datamodule.ignore_index)
    )
    logits = trainer.predict(module, dataloaders=loader)
    images, targets = zip(*(raw[index] for index in first), strict=True) if first else ((), ())
    return (
        [np.asarray(image) for image in images],
        [np.asarray(target) for target in targets],
        [prediction[0].argmax(0).cpu().numpy() for prediction in logits],
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on ``cfg.split`` and write the results to ``cfg.paths.output_dir``."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    split = cfg.split
    if split not in SPLITS:
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    module = load_checkpoint(cfg.get("ckpt_path"))
    module.inference = build(cfg.inference, "inference") if cfg.get("inference") is not None else None
    datamodule = evaluation_data(cfg, module, split)
    loader = datamodule.dataloader(split)
    trainer = evaluation_trainer(cfg)
    trainer.test(module, dataloaders=loader, verbose=False)
    logged = {key: value for key, value in trainer.callback_metrics.items() if key.startswith("test/")}
    result = evaluation_result(cfg, module, nest(logged), len(loader.dataset))

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
    scores = {key.replace("test/", f"{split}/", 1): value for key, value in metrics.items()}
    return {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "split": split,
        "decoder": decoder_label(module.hparams.decoder),
        "model": module.hparams.net["name"],
        "images": images,
        "inference": module.inference.describe(),
        **scores,
        "class_names": module.class_names,
        "confusion_matrix": module.test_confusion_matrix.numpy().astype(int).tolist(),
    }


def print_table(result: dict[str, Any], split: str, output_dir: Path) -> None:
    """The catalogue's per-class metrics as columns, one row per class and their means, then the other scalars."""
    from rich.console import Console
    from rich.table import Table

    per_class = [spec for spec in specs(per_class=True) if f"{split}/{spec.key}" in result]
    table = Table(title=f"{result['model']} · decoder={result['decoder']} · {split} ({result['images']} images)")
    table.add_column("class")
    for spec in per_class:
        table.add_column(spec.label, justify="right")
    for name in result["class_names"]:
        table.add_row(name, *(formatted(result[f"{split}/{spec.key}"].get(name), spec.digits) for spec in per_class))
    table.add_section()
    means = [result.get(f"{split}/{spec.mean}") for spec in per_class]
    table.add_row("mean", *(formatted(value, spec.digits) for value, spec in zip(means, per_class, strict=True)))
    shown = {spec.mean for spec in per_class}
    for spec in specs(per_class=False):
        if spec.key not in shown and result.get(f"{split}/{spec.key}") is not None:
            table.add_row(
                spec.label, formatted(result[f"{split}/{spec.key}"], spec.digits), *[""] * (len(per_class) - 1)
            )
    console = Console()
    console.print(table)
    console.print(f"results in {output_dir}")
