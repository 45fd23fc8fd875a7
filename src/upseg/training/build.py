"""Building a run from its config: the datamodule, the LightningModule for the datamodule's label space, the loggers,
the callbacks and the Trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from upseg.cli.validation import build
from upseg.data import SegmentationDataModule
from upseg.training.module import SegmentationModule


@dataclass
class Run:
    """What one training run is made of."""

    datamodule: SegmentationDataModule
    module: SegmentationModule
    trainer: L.Trainer


def instantiate_all(group: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every entry of a config group such as ``callbacks`` or ``logger`` (a mapping of name → config)."""
    if not group:
        return []
    return [
        build(node, f"{key}.{name}")
        for name, node in group.items()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def build_module(
    model_cfg: DictConfig, datamodule: SegmentationDataModule, inference: DictConfig | None = None
) -> SegmentationModule:
    """The LightningModule of ``model_cfg`` for the label space of ``datamodule``: the data, not the model config,
    says how many classes there are and what they are called (``data.binary`` of Pets changes both), and how its
    images are prepared (its data spec, kept in checkpoints); ``inference`` (the ``inference`` config node) is how its
    tests run the network."""
    module: SegmentationModule = build(
        model_cfg,
        "model",
        num_classes=datamodule.num_classes,
        class_names=datamodule.class_names,
        data_spec=datamodule.data_spec().as_dict(),
    )
    if inference is not None:  # set afterwards: Hydra would read the settings (a dataclass) as a structured config
        module.inference = build(inference, "inference")
    return module


def build_run(cfg: DictConfig) -> Run:
    """The datamodule, module (carrying the whole resolved config, kept in its checkpoints) and Trainer of ``cfg``;
    every logger is given the config as its hyperparameters."""
    datamodule: SegmentationDataModule = build(cfg.data, "data")
    module = build_module(cfg.model, datamodule, cfg.get("inference"))
    module.run_config = OmegaConf.to_container(cfg, resolve=True)  # so evaluate.py finds the same data
    loggers = instantiate_all(cfg.get("logger"), "logger")
    callbacks = instantiate_all(cfg.get("callbacks"), "callbacks")
    trainer: L.Trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers)
    for logger in loggers:
        logger.log_hyperparams(module.run_config)
    return Run(datamodule, module, trainer)
