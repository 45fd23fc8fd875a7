"""``SegmentationModule``: the one LightningModule — a network from :func:`upseg.models.build_model`, pixel-wise
cross-entropy, torchmetrics' IoU and accuracy, and boundary IoU.

Batches are ``(images N×3×H×W float32, masks N×H×W int64)``; pixels equal to ``ignore_index`` count neither in the
loss nor in a metric. mIoU is torchmetrics' macro Jaccard index: classes absent from both prediction and target in the
whole evaluated set are left out of the mean (their IoU is logged as 0). Boundary IoU (``bIoU``,
:class:`upseg.metrics.BoundaryIoU`) is the same in a band of ``boundary_dilation_ratio`` × the image diagonal along
each class's contour; in an eval batch padded to its largest image the band width and the image edge are those of
the padded size (use ``data.eval_batch_size=1`` for exact per-image bands on datasets of mixed sizes).

Tests also log the checkerboard score of the logits, keep the confusion matrix, and keep every test image's IoU and
boundary-IoU counts per class (``test_per_image``, by dataset index) for per-image files. All constructor arguments
are saved as hyperparameters in plain containers, so ``SegmentationModule.load_from_checkpoint(path)`` rebuilds the
exact model — network, decoder and options — from the checkpoint alone.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryRecall,
    BinarySpecificity,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from upseg.errors import ConfigError
from upseg.losses import CrossEntropy, balanced_class_weights
from upseg.metrics import BoundaryIoU, CheckerboardScore, PerImageScores, pooled_scores
from upseg.models import build_model

log = logging.getLogger(__name__)
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 1e-4}
DEFAULT_SCHEDULER = {"_target_": "torch.optim.lr_scheduler.PolynomialLR", "_partial_": True, "power": 0.9}
# Scheduler arguments that mean "length of training"; filled with the number of optimizer steps when left out.
SCHEDULE_LENGTH_ARGUMENTS = ("total_iters", "T_max", "total_steps")


def plain(value: Any) -> Any:
    """OmegaConf containers → dicts and lists (resolved), so hyperparameters pickle and print plainly."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


# Metrics with one value per class, and the key their values are logged under: ``<prefix><key>/<class name>``.
PER_CLASS = {"IoU": "IoU", "bIoU_per_class": "bIoU", "Dice": "Dice"}
# Binary scores are binned at this many thresholds: exact AUC would keep every pixel's probability of the test set.
AUC_THRESHOLDS = 1001


def segmentation_metrics(num_classes: int, ignore_index: int, dilation_ratio: float | None = None) -> MetricCollection:
    """mIoU, per-class IoU, pixel and mean class accuracy; with a ``dilation_ratio``, boundary IoU too."""
    common = {"num_classes": num_classes, "ignore_index": ignore_index}
    metrics = {
        "mIoU": MulticlassJaccardIndex(average="macro", **common),
        "IoU": MulticlassJaccardIndex(average="none", **common),
        "acc": MulticlassAccuracy(average="micro", **common),
        "mAcc": MulticlassAccuracy(average="macro", **common),
        "mDice": MulticlassF1Score(average="macro", **common),
        "Dice": MulticlassF1Score(average="none", **common),
    }
    if dilation_ratio is not None:
        metrics["bIoU"] = BoundaryIoU(average="macro", dilation_ratio=dilation_ratio, **common)
        metrics["bIoU_per_class"] = BoundaryIoU(average="none", dilation_ratio=dilation_ratio, **common)
    return MetricCollection(metrics, compute_groups=True)


def loader_batches(loaders: Any) -> list[list[int]]:
    """Dataset indices of every batch a (single) test loader yields, in order; empty when it cannot say.

    Evaluation samplers are deterministic (sequential, or distributed without shuffling), so iterating the batch
    sampler once more gives the batches the loop will see.
    """
    loader = loaders[0] if isinstance(loaders, list | tuple) and len(loaders) == 1 else loaders
    batch_sampler = getattr(loader, "batch_sampler", None)
    return [list(batch) for batch in batch_sampler] if batch_sampler is not None else []


def binary_metrics(ignore_index: int) -> MetricCollection:
    """Scores of class 1 (the positive class, e.g. vessel) against class 0 from its probability, as medical
    segmentation reports them: Dice (= F1), sensitivity, specificity, accuracy and AUC over the valid pixels."""
    return MetricCollection(
        {
            "Dice": BinaryF1Score(ignore_index=ignore_index),
            "sensitivity": BinaryRecall(ignore_index=ignore_index),
            "specificity": BinarySpecificity(ignore_index=ignore_index),
            "accuracy": BinaryAccuracy(ignore_index=ignore_index),
            "AUC": BinaryAUROC(thresholds=AUC_THRESHOLDS, ignore_index=ignore_index),
        },
        prefix="test/binary/",
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
        boundary_dilation_ratio: float = 0.02,
        loss: Mapping[str, Any] | None = None,
        **network_options: Any,
    ) -> None:
        super().__init__()
        if not boundary_dilation_ratio > 0:
            raise ConfigError(
                f"model.boundary_dilation_ratio must be positive (the boundary band as a fraction of the image "
                f"diagonal, e.g. 0.02), got {boundary_dilation_ratio}"
            )
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
            "boundary_dilation_ratio": boundary_dilation_ratio,
            "loss": plain(loss),
            **{key: plain(value) for key, value in network_options.items()},
        }
        self.save_hyperparameters(hparams)
        self.net = build_model(network, num_classes, self.hparams.decoder, **plain(network_options))
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.class_names = self.hparams.class_names or [f"class_{i}" for i in range(num_classes)]
        self.criterion = (
            instantiate(self.hparams.loss, num_classes=num_classes, ignore_index=ignore_index)
            if self.hparams.loss
            else CrossEntropy(num_classes, ignore_index)
        )
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_metrics = segmentation_metrics(num_classes, ignore_index, boundary_dilation_ratio).clone(prefix="val/")
        # Test boundary IoU comes from the per-image counts (one erosion per image, not two).
        self.test_metrics = segmentation_metrics(num_classes, ignore_index).clone(prefix="test/")
        self.test_per_image_scores = PerImageScores(num_classes, ignore_index, boundary_dilation_ratio)
        self.test_per_image: dict[str, Tensor] | None = None  # counts per test image and class (after a test)
        self._test_batches: list[list[int]] = []  # dataset indices of each test batch, in loader order
        self.val_miou_best = MaxMetric()
        self.test_binary = binary_metrics(ignore_index) if num_classes == 2 else None
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
        return self.criterion(logits, masks), logits, masks

    def setup(self, stage: str) -> None:
        """``loss.class_weights=balanced``: weights from the training set's pixel counts (kept in checkpoints)."""
        if stage == "fit" and getattr(self.criterion, "needs_class_frequencies", False):
            datamodule = self.trainer.datamodule
            masks = (mask for _, mask in datamodule.raw_dataset("train"))
            weights = balanced_class_weights(masks, self.hparams.num_classes, self.hparams.ignore_index)
            self.criterion.set_class_weights(weights)
            log.info("balanced class weights: %s", ", ".join(f"{w:.3f}" for w in weights.tolist()))

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
        self.val_loss(loss, len(masks))  # weighted by images: the mean does not depend on how batches split
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

    def on_test_epoch_start(self) -> None:
        self._test_batches = loader_batches(self.trainer.test_dataloaders)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, masks = self._step(batch)
        self.test_loss(loss, len(masks))
        predictions = logits.argmax(1)
        self.test_metrics.update(predictions, masks)
        self.test_confmat.update(predictions, masks)
        self.test_checkerboard.update(logits, masks != self.hparams.ignore_index)
        if self.test_binary is not None:
            self.test_binary.update(logits.float().softmax(1)[:, 1], masks)
        if batch_idx < len(self._test_batches):
            indices = self._test_batches[batch_idx]
        else:  # a loader without a batch sampler: batches in dataset order
            indices = range(batch_idx * len(masks), (batch_idx + 1) * len(masks))
        self.test_per_image_scores.update(predictions, masks, torch.as_tensor(list(indices), device=masks.device))
        self.log("test/loss", self.test_loss, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        metrics = self._flatten(self.test_metrics.compute(), "test/")
        metrics["test/checkerboard"] = self.test_checkerboard.compute()
        if self.test_binary is not None:
            metrics.update(self.test_binary.compute())
            self.test_binary.reset()
        self.test_per_image = {key: value.cpu() for key, value in self.test_per_image_scores.compute().items()}
        boundary = pooled_scores(self.test_per_image)
        metrics["test/bIoU"] = boundary["mbIoU"]
        metrics.update(
            {f"test/bIoU/{name}": value for name, value in zip(self.class_names, boundary["bIoU"], strict=True)}
        )
        self.log_dict(metrics)
        self.test_confusion_matrix = self.test_confmat.compute().cpu()
        for metric in (self.test_metrics, self.test_confmat, self.test_checkerboard, self.test_per_image_scores):
            metric.reset()

    def predict_step(self, batch: tuple[Tensor, ...] | Tensor, batch_idx: int) -> Tensor:
        """Class indices ``N×H×W`` for a batch of images (or of ``(images, masks)``)."""
        images = batch[0] if isinstance(batch, tuple | list) else batch
        return self(images).argmax(1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["upseg_run_config"] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.run_config = checkpoint.get("upseg_run_config")
        # Checkpoints from before the loss had state: keep this module's (default) loss buffers.
        state = checkpoint.get("state_dict", {})
        for key, value in self.state_dict().items():
            if key.startswith("criterion.") and key not in state:
                state[key] = value

    def _flatten(self, computed: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
        """Per-class values (:data:`PER_CLASS`) → ``{prefix}<key>/<class name>``; everything else as is."""
        out = {}
        for key, value in computed.items():
            name = key.removeprefix(prefix)
            if name in PER_CLASS:
                out.update({f"{prefix}{PER_CLASS[name]}/{c}": v for c, v in zip(self.class_names, value, strict=True)})
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
