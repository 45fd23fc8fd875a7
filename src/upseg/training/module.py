"""``SegmentationModule``: the one LightningModule — a network from the registry (:func:`upseg.models.build_network`),
a loss from the ``loss`` config group (pixel-wise cross-entropy by default) and the metrics of the catalogue
(:mod:`upseg.metrics.catalogue`).

Batches are :class:`~upseg.data.Batch` ``(images N×3×H×W float32, masks N×H×W int64, indices N int64)``, ``indices``
being each sample's position in its dataset; pixels equal to ``ignore_index`` count neither in the loss nor in a
metric. mIoU is torchmetrics' macro Jaccard index: classes absent from both prediction and target in the whole
evaluated set are left out of the mean (their IoU is logged as 0). Boundary IoU (``bIoU``,
:class:`upseg.metrics.BoundaryIoU`) is the same in a band along each class's contour, ``boundary_width`` pixels wide
or ``boundary_dilation_ratio`` × the image diagonal (one of the two; 0.02 when neither is set); in a validation batch
padded to its largest image the band width and the image edge are those of the padded size (use
``data.eval_batch_size=1`` for exact per-image bands on datasets of mixed sizes).

Tests also keep the confusion matrix, and every test image's IoU and boundary-IoU counts per class
(``test_per_image``, by dataset index) for per-image files; test boundary IoU is pooled from those counts. All
constructor arguments but ``inference`` are saved as hyperparameters in plain containers, so a checkpoint alone rebuilds
the exact model — network, decoder and options (:func:`upseg.training.checkpoints.module_from_checkpoint`) — and
says how to predict with it on new images: ``data_spec`` (:class:`upseg.data.DataSpec`: normalisation, evaluation
size, image conversion, palette) beside ``class_names`` and ``ignore_index``.

Tests and predictions run the network through :meth:`SegmentationModule.infer`, under ``inference``
(:class:`upseg.inference.InferenceSettings`: whole image or sliding windows, flip and scales) — the one
implementation that ``evaluate.py``, ``predict.py`` and :func:`upseg.load` use too. ``inference`` is a choice made
when predicting, not a property of the weights: it is not saved, and a loaded module infers on whole images until
told otherwise. Training and validation always see whole images (crops and full validation images, as before).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from upseg.cli.validation import plain
from upseg.data import Batch, DataSpec
from upseg.data.unlabeled import ImageSample
from upseg.errors import ConfigError
from upseg.inference import InferenceSettings, infer_logits
from upseg.losses import CrossEntropy, balanced_class_weights
from upseg.metrics import PerImageScores
from upseg.metrics.catalogue import MetricContext, StageMetrics
from upseg.models import build_network
from upseg.training.schedules import Budget

log = logging.getLogger(__name__)
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 1e-4}
# Scheduler arguments that mean "length of training"; filled with the number of optimizer steps when left out.
SCHEDULE_LENGTH_ARGUMENTS = ("total_iters", "T_max", "total_steps")
DEFAULT_BOUNDARY_RATIO = 0.02  # Cheng et al.'s band: 2 % of the image diagonal


def boundary_band(ratio: float | None, width: int | None) -> float:
    """The band's ratio (the default 0.02 when neither is set); one error when both are set or one is not positive."""
    if ratio is not None and width is not None:
        raise ConfigError(
            f"model.boundary_width={width} and model.boundary_dilation_ratio={ratio} both set the boundary band; "
            "keep one and set the other to null"
        )
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ConfigError(f"model.boundary_width must be a positive int (the band in pixels, e.g. 2), got {width!r}")
    if ratio is not None and not ratio > 0:
        raise ConfigError(
            f"model.boundary_dilation_ratio must be positive (the boundary band as a fraction of the image "
            f"diagonal, e.g. 0.02), got {ratio}"
        )
    return DEFAULT_BOUNDARY_RATIO if ratio is None else ratio


class SegmentationModule(L.LightningModule):
    """Train, validate and test a segmentation network; see the module docstring. ``net`` is ``{name, **options}``
    of a registered network (``model.net`` in the config)."""

    def __init__(
        self,
        net: Mapping[str, Any],
        num_classes: int,
        decoder: Mapping[str, Any],
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        scheduler_interval: str = "step",
        channels_last: bool = False,
        compile: bool | str = False,
        boundary_dilation_ratio: float | None = None,
        loss: Mapping[str, Any] | None = None,
        boundary_width: int | None = None,
        data_spec: Mapping[str, Any] | None = None,
        inference: InferenceSettings | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        ratio = boundary_band(boundary_dilation_ratio, boundary_width)
        self.save_hyperparameters(
            {
                "net": plain(net),
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
                "data_spec": plain(data_spec),
                "boundary_width": boundary_width,
            }
        )
        self.net = build_network(num_classes=num_classes, decoder=self.hparams.decoder, **self.hparams.net)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.class_names = self.hparams.class_names or [f"class_{i}" for i in range(num_classes)]
        self.criterion = (
            instantiate(self.hparams.loss, num_classes=num_classes, ignore_index=ignore_index)
            if self.hparams.loss
            else CrossEntropy(num_classes, ignore_index)
        )
        context = MetricContext(num_classes, ignore_index, ratio, self.net.checkerboard_period, boundary_width)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_metrics = StageMetrics("val", context, self.class_names)
        self.test_metrics = StageMetrics("test", context, self.class_names, counts=True)
        self.test_per_image_scores = PerImageScores(num_classes, ignore_index, ratio, boundary_width)
        self.test_per_image: dict[str, Tensor] | None = None  # counts per test image and class (after a test)
        self.val_miou_best = MaxMetric()
        self.test_confmat = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.test_confusion_matrix: Tensor | None = None  # rows: target, columns: prediction (after a test)
        self.run_config: dict[str, Any] | None = None  # the whole run's config, kept in checkpoints
        self.inference = inference  # type: ignore[assignment]  # checked against the network by the setter

    @property
    def inference(self) -> InferenceSettings:
        """How tests and predictions run the network (see the module docstring)."""
        return self._inference

    @inference.setter
    def inference(self, settings: InferenceSettings | Mapping[str, Any] | None) -> None:
        if settings is None:
            settings = InferenceSettings()
        elif not isinstance(settings, InferenceSettings):
            values = {key: value for key, value in plain(settings).items() if not key.startswith("_")}
            if unknown := sorted(set(values) - set(inspect.signature(InferenceSettings).parameters)):
                known = ", ".join(inspect.signature(InferenceSettings).parameters)
                raise ConfigError(f"inference.{unknown[0]} is not an inference setting; the settings: {known}")
            settings = InferenceSettings(**values)
        settings.check_for(self.net.size_multiple)
        self._inference = settings

    @property
    def data_spec(self) -> DataSpec:
        """What predicting on new images needs; a checkpoint from before it was kept gets
        :meth:`DataSpec.of_older_run` of its recorded data config."""
        if self.hparams.get("data_spec") is not None:
            return DataSpec.from_dict(self.hparams.data_spec)
        return DataSpec.of_older_run((self.run_config or {}).get("data"))

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

    def infer(self, images: Tensor) -> Tensor:
        """``N×3×H×W`` → ``N×K×H×W`` logits under :attr:`inference` (whole or sliding windows, flips, scales)."""
        return infer_logits(self, images, self.inference)

    def _step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        logits = self(batch.images)
        return self.criterion(logits, batch.masks), logits

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

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss, _ = self._step(batch)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, logits = self._step(batch)
        self.val_loss(loss, len(batch.masks))  # weighted by images: the mean does not depend on how batches split
        self.val_metrics.update(logits, batch.masks, self.hparams.ignore_index)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_metrics.compute()
        self.val_metrics.reset()
        if not self.trainer.sanity_checking:
            self.val_miou_best(metrics["val/mIoU"])
            metrics["val/mIoU_best"] = self.val_miou_best.compute()
        self.log("val/mIoU", metrics.pop("val/mIoU"), prog_bar=True)
        self.log_dict(metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        logits = self.infer(batch.images)
        loss = self.criterion(logits, batch.masks)
        self.test_loss(loss, len(batch.masks))
        predictions = logits.argmax(1)
        self.test_metrics.update(logits, batch.masks, self.hparams.ignore_index)
        self.test_confmat.update(predictions, batch.masks)
        self.test_per_image_scores.update(predictions, batch.masks, batch.indices)
        self.log("test/loss", self.test_loss, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        self.test_per_image = {key: value.cpu() for key, value in self.test_per_image_scores.compute().items()}
        metrics = self.test_metrics.compute() | self.test_metrics.from_counts(self.test_per_image)
        self.log_dict(metrics)
        self.test_confusion_matrix = self.test_confmat.compute().cpu()
        for metric in (self.test_metrics, self.test_confmat, self.test_per_image_scores):
            metric.reset()

    def predict_step(self, batch: Batch | ImageSample | Tensor, batch_idx: int) -> Tensor | None:
        """Logits ``N×K×H×W`` under :attr:`inference` for a batch of images, a :class:`~upseg.data.Batch` or an
        :class:`~upseg.data.unlabeled.ImageSample` (None for one whose file could not be read)."""
        images = batch if isinstance(batch, Tensor) else batch.image if isinstance(batch, ImageSample) else batch.images
        return None if images is None else self.infer(images)

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

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = instantiate(self.hparams.optimizer)(params=self.parameters())
        if not self.hparams.scheduler:
            return {"optimizer": optimizer}
        scheduler_factory = instantiate(self.hparams.scheduler)
        target = scheduler_factory.func if hasattr(scheduler_factory, "func") else scheduler_factory
        accepted = inspect.signature(target).parameters
        length = {}
        steps = self.trainer.estimated_stepping_batches
        steps = steps if self.hparams.scheduler_interval == "step" else self.trainer.max_epochs
        for name in SCHEDULE_LENGTH_ARGUMENTS:
            if name in accepted and name not in self.hparams.scheduler:
                length[name] = steps
        if "budget" in accepted:  # a budget-following schedule (upseg.training.schedules) also watches max_time
            length["budget"] = Budget.of_trainer(self.trainer, steps)
        scheduler = scheduler_factory(optimizer=optimizer, **length)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval},
        }
