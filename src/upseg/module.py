"""``SegmentationModule``: the one LightningModule — a network from :func:`upseg.models.build_model`, pixel-wise
cross-entropy, and torchmetrics' IoU and accuracy.

Batches are ``(images N×3×H×W float32, masks N×H×W int64)``; pixels equal to ``ignore_index`` count neither in the
loss nor in a metric. mIoU is torchmetrics' macro Jaccard index: classes absent from both prediction and target in the
whole evaluated set are left out of the mean (their IoU is logged as 0). Tests also log the checkerboard score of the
logits (:mod:`upseg.metrics`) and keep the confusion matrix. All constructor arguments are saved as
hyperparameters in plain containers, so ``SegmentationModule.load_from_checkpoint(path)`` rebuilds the exact model —
network, decoder and options — from the checkpoint alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassJaccardIndex

import upseg.resolvers  # noqa: F401  (the model config interpolates data.num_classes, which may use them)
from upseg.metrics import CheckerboardScore
from upseg.models import build_model

DEFAULT_OPTIMIZER = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 1e-4}
DEFAULT_SCHEDULER = {"_target_": "torch.optim.lr_scheduler.PolynomialLR", "_partial_": True, "power": 0.9}
# Scheduler arguments that mean "length of training"; filled with the number of optimizer steps when left out.
SCHEDULE_LENGTH_ARGUMENTS = ("total_iters", "T_max", "total_steps")


def plain(value: Any) -> Any:
    """OmegaConf containers → dicts and lists (resolved), so hyperparameters pickle and print plainly."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def segmentation_metrics(num_classes: int, ignore_index: int) -> MetricCollection:
    common = {"num_classes": num_classes, "ignore_index": ignore_index}
    return MetricCollection(
        {
            "mIoU": MulticlassJaccardIndex(average="macro", **common),
            "IoU": MulticlassJaccardIndex(average="none", **common),
            "acc": MulticlassAccuracy(average="micro", **common),
            "mAcc": MulticlassAccuracy(average="macro", **common),
        },
        compute_groups=True,
    )


class SegmentationModule(L.LightningModule):
    """Train, validate and test a segmentation network; see the module docstring."""

    def __init__(
        self,
        network: str,
        num_classes: int,
        decoder: Mapping[str, Any],
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        scheduler_interval: str = "step",
        channels_last: bool = False,
        compile: bool | str = False,
        **network_options: Any,
    ) -> None:
        super().__init__()
        hparams = {
            "network": network,
            "num_classes": num_classes,
            "decoder": plain(decoder),
            "ignore_index": ignore_index,
            "class_names": list(plain(class_names)) if class_names is not None else None,
            "optimizer": plain(optimizer) if optimizer is not None else dict(DEFAULT_OPTIMIZER),
            "scheduler": plain(scheduler),
            "scheduler_interval": scheduler_interval,
            "channels_last": channels_last,
            "compile": compile,
            **{key: plain(value) for key, value in network_options.items()},
        }
        self.save_hyperparameters(hparams)
        self.net = build_model(network, num_classes, self.hparams.decoder, **plain(network_options))
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.class_names = self.hparams.class_names or [f"class_{i}" for i in range(num_classes)]
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_metrics = segmentation_metrics(num_classes, ignore_index).clone(prefix="val/")
        self.test_metrics = segmentation_metrics(num_classes, ignore_index).clone(prefix="test/")
        self.val_miou_best = MaxMetric()
        self.test_confmat = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.test_checkerboard = CheckerboardScore(getattr(self.net, "checkerboard_period", 2))
        self.test_confusion_matrix: Tensor | None = None  # rows: target, columns: prediction (after a test)
        self.run_config: dict[str, Any] | None = None  # the whole run's config, kept in checkpoints

    def configure_model(self) -> None:
        """``compile``: ``true`` for torch.compile's default backend (inductor), or a backend name."""
        if self.hparams.compile and not getattr(self, "_compiled", False):
            backend = self.hparams.compile if isinstance(self.hparams.compile, str) else "inductor"
            # In place, so parameter names (and checkpoints) stay those of the uncompiled network.
            self.net.compile(backend=backend)
            self._compiled = True

    def forward(self, images: Tensor) -> Tensor:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    def _step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        images, masks = batch
        logits = self(images)
        loss = F.cross_entropy(logits, masks, ignore_index=self.hparams.ignore_index)
        return loss, logits, masks

    def on_train_start(self) -> None:
        # The sanity check must not seed the best-so-far.
        self.val_loss.reset()
        self.val_metrics.reset()
        self.val_miou_best.reset()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _, _ = self._step(batch)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, masks = self._step(batch)
        self.val_loss(loss)
        self.val_metrics.update(logits.argmax(1), masks)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        metrics = self._flatten(self.val_metrics.compute(), "val/")
        self.val_metrics.reset()
        if not self.trainer.sanity_checking:
            self.val_miou_best(metrics["val/mIoU"])
            metrics["val/mIoU_best"] = self.val_miou_best.compute()
        self.log("val/mIoU", metrics.pop("val/mIoU"), prog_bar=True)
        self.log_dict(metrics)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, masks = self._step(batch)
        self.test_loss(loss)
        predictions = logits.argmax(1)
        self.test_metrics.update(predictions, masks)
        self.test_confmat.update(predictions, masks)
        self.test_checkerboard.update(logits, masks != self.hparams.ignore_index)
        self.log("test/loss", self.test_loss, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        metrics = self._flatten(self.test_metrics.compute(), "test/")
        metrics["test/checkerboard"] = self.test_checkerboard.compute()
        self.log_dict(metrics)
        self.test_confusion_matrix = self.test_confmat.compute().cpu()
        for metric in (self.test_metrics, self.test_confmat, self.test_checkerboard):
            metric.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["upseg_run_config"] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.run_config = checkpoint.get("upseg_run_config")

    def _flatten(self, computed: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
        """Per-class IoU → ``{prefix}IoU/<class name>``; everything else as is."""
        out = {}
        for key, value in computed.items():
            if key == f"{prefix}IoU":
                out.update({f"{prefix}IoU/{name}": iou for name, iou in zip(self.class_names, value, strict=True)})
            else:
                out[key] = value
        return out

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = instantiate(self.hparams.optimizer)(params=self.parameters())
        if not self.hparams.scheduler:
            return {"optimizer": optimizer}
        scheduler_factory = instantiate(self.hparams.scheduler)
        target = scheduler_factory.func if hasattr(scheduler_factory, "func") else scheduler_factory
        accepted = inspect.signature(target).parameters
        length = {}
        for name in SCHEDULE_LENGTH_ARGUMENTS:
            if name in accepted and name not in self.hparams.scheduler:
                steps = self.trainer.estimated_stepping_batches
                length[name] = steps if self.hparams.scheduler_interval == "step" else self.trainer.max_epochs
        scheduler = scheduler_factory(optimizer=optimizer, **length)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval},
        }
