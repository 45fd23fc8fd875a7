"""The one catalogue of what a run reports: every quality metric (:data:`METRICS`) and every cost field
(:data:`COST_COLUMNS`), each written once with its key, label and digits.

Everything that logs or shows a metric is built or rendered from here: the LightningModule's validation and test
metrics (:class:`StageMetrics`), the training summary, ``evaluate.py``'s table, ``metrics.json`` (:func:`nest`) and
the comparison's columns. Adding a metric is one :func:`register_metric` call (a :class:`MetricSpec`).

Keys and the one nested form of per-class values. A metric with key ``k`` is logged as ``<split>/k`` — or, one value
per class, as ``<split>/k/<class name>`` — and appears in ``metrics.json`` as ``<split>/k`` (``best/<split>/k`` for
the best checkpoint): a number, or for a per-class metric a mapping ``{class name: value}`` in class order.

Inputs. A metric is updated with one of three views of a batch: ``labels`` (``argmax`` of the logits ``N×H×W`` and
the target), ``positive_probability`` (softmax probability of class 1 ``N×H×W`` and the target; two-class data) or
``logits`` (``N×C×H×W`` and the valid-pixel mask ``N×H×W``). Boundary IoU at test is instead pooled from the
per-image counts the test keeps anyway (``from_counts``), so each image is eroded once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryRecall,
    BinarySpecificity,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from upseg.metrics.boundary_iou import BoundaryIoU
from upseg.metrics.checkerboard import CheckerboardScore
from upseg.metrics.per_image import pooled_scores

Stage = Literal["val", "test"]
Input = Literal["labels", "positive_probability", "logits"]
# Binary scores are binned at this many thresholds: exact AUC would keep every pixel's probability of the test set.
AUC_THRESHOLDS = 1001


@dataclass(frozen=True)
class MetricContext:
    """What building a metric may depend on: the label space, and the network's and the boundary band's geometry
    (``boundary_width`` pixels when given, else ``boundary_dilation_ratio`` × the image diagonal)."""

    num_classes: int
    ignore_index: int
    boundary_dilation_ratio: float = 0.02
    checkerboard_period: int = 2
    boundary_width: int | None = None


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``key`` (logged as ``<split>/<key>``), ``label`` (for people), ``digits`` shown.

    ``build(context)`` makes its torchmetrics ``Metric``, fed with the ``input`` view of each batch; ``from_counts``,
    where given, computes it at test from the per-image counts instead. ``per_class``: one value per class (``mean``
    names the metric that is their mean, for tables). ``classes``: the only class count it applies to (2: two-class
    data), or None for any. ``stages``: where it is computed. ``headline``: also reported for the best checkpoint and
    shown first.
    """

    key: str
    label: str
    build: Callable[[MetricContext], Metric]
    input: Input = "labels"
    digits: int = 4
    per_class: bool = False
    mean: str | None = None
    classes: int | None = None
    stages: tuple[Stage, ...] = ("val", "test")
    headline: bool = False
    from_counts: Callable[[Mapping[str, Tensor]], Tensor] | None = None

    def applies(self, num_classes: int, stage: Stage | None = None) -> bool:
        return (self.classes is None or self.classes == num_classes) and (stage is None or stage in self.stages)


@dataclass(frozen=True)
class Column:
    """A scalar a run summary or a comparison shows: its ``metrics.json`` key, label and digits."""

    key: str
    label: str
    digits: int


METRICS: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add ``spec`` to :data:`METRICS`; every renderer and the LightningModule pick it up from there."""
    if spec.key in METRICS:
        raise ValueError(f"metric {spec.key!r} is already registered")
    METRICS[spec.key] = spec
    return spec


def _multiclass(kind: type[Metric], average: str) -> Callable[[MetricContext], Metric]:
    return lambda c: kind(num_classes=c.num_classes, ignore_index=c.ignore_index, average=average)


def _binary(kind: type[Metric], **options: Any) -> Callable[[MetricContext], Metric]:
    return lambda c: kind(ignore_index=c.ignore_index, **options)


def _boundary(average: str) -> Callable[[MetricContext], Metric]:
    return lambda c: BoundaryIoU(
        c.num_classes, c.ignore_index, c.boundary_dilation_ratio, average=average, band_pixels=c.boundary_width
    )


for _spec in (
    MetricSpec("mIoU", "mIoU", _multiclass(MulticlassJaccardIndex, "macro"), headline=True),
    MetricSpec(
        "bIoU",
        "bIoU",
        _boundary("macro"),
        headline=True,
        from_counts=lambda counts: pooled_scores(counts)["mbIoU"],
    ),
    MetricSpec("mDice", "mDice", _multiclass(MulticlassF1Score, "macro")),
    MetricSpec("acc", "pixel accuracy", _multiclass(MulticlassAccuracy, "micro")),
    MetricSpec("mAcc", "mean class accuracy", _multiclass(MulticlassAccuracy, "macro")),
    MetricSpec("IoU", "IoU", _multiclass(MulticlassJaccardIndex, "none"), per_class=True, mean="mIoU"),
    MetricSpec(
        "boundary_IoU",
        "boundary IoU",
        _boundary("none"),
        per_class=True,
        mean="bIoU",
        from_counts=lambda counts: pooled_scores(counts)["bIoU"],
    ),
    MetricSpec("Dice", "Dice", _multiclass(MulticlassF1Score, "none"), per_class=True, mean="mDice"),
    # Scores of class 1 (the positive class, e.g. vessel) against class 0 from its probability, as medical
    # segmentation reports them.
    *(
        MetricSpec(f"binary/{name}", f"class-1 {name}", build, "positive_probability", classes=2, stages=("test",))
        for name, build in (
            ("Dice", _binary(BinaryF1Score)),
            ("sensitivity", _binary(BinaryRecall)),
            ("specificity", _binary(BinarySpecificity)),
            ("accuracy", _binary(BinaryAccuracy)),
            ("AUC", _binary(BinaryAUROC, thresholds=AUC_THRESHOLDS)),
        )
    ),
    MetricSpec(
        "checkerboard", "checkerboard", lambda c: CheckerboardScore(c.checkerboard_period), "logits", stages=("test",)
    ),
):
    register_metric(_spec)

# The cost figures of a run (parameters, FLOPs, speed, memory), as summaries and comparisons show them.
COST_COLUMNS = (
    Column("parameters", "parameters", 0),
    Column("gflops", "GFLOPs", 3),
    Column("train_images_per_second", "train images/s", 1),
    Column("inference_ms_per_image", "inference ms/image", 2),
    Column("peak_memory_mb", "peak MB", 0),
    Column("train_seconds", "train s", 1),
)


def specs(
    num_classes: int | None = None, stage: Stage | None = None, per_class: bool | None = None
) -> list[MetricSpec]:
    """The registered metrics, headline ones first; only those for ``num_classes``, ``stage`` and ``per_class`` when
    given."""
    chosen = [
        spec
        for spec in METRICS.values()
        if (num_classes is None or spec.applies(num_classes))
        and (stage is None or stage in spec.stages)
        and (per_class is None or spec.per_class == per_class)
    ]
    return sorted(chosen, key=lambda spec: not spec.headline)


def _name(key: str) -> str:
    return key.replace("/", "__")  # a module name may not hold "/" or "."


class StageMetrics(nn.Module):
    """The catalogue's metrics of one stage: ``update(logits, masks)`` feeds each the view it takes;
    :meth:`compute` → ``{"<stage>/<key>": value}``, per-class values as ``"<stage>/<key>/<class name>"``.

    Metrics with ``from_counts`` are left to :meth:`from_counts` at test, where per-image counts exist.
    """

    def __init__(self, stage: Stage, context: MetricContext, class_names: Sequence[str], counts: bool = False):
        super().__init__()
        self.stage = stage
        self.class_names = list(class_names)
        chosen = [spec for spec in specs(context.num_classes, stage) if not (counts and spec.from_counts)]
        self.counted = [spec for spec in specs(context.num_classes, stage) if counts and spec.from_counts]
        self.specs = {_name(spec.key): spec for spec in chosen}
        by_input: dict[str, dict[str, Metric]] = {}
        for name, spec in self.specs.items():
            by_input.setdefault(spec.input, {})[name] = spec.build(context)
        # Metrics of the same input share their statistics where torchmetrics can tell (compute groups).
        self.collections = nn.ModuleDict(
            {kind: MetricCollection(m, compute_groups=True) for kind, m in by_input.items()}
        )

    def update(self, logits: Tensor, masks: Tensor, ignore_index: int) -> None:
        views: dict[str, Callable[[], tuple[Tensor, ...]]] = {
            "labels": lambda: (logits.argmax(1), masks),
            "positive_probability": lambda: (logits.float().softmax(1)[:, 1], masks),
            "logits": lambda: (logits, masks != ignore_index),
        }
        for kind, collection in self.collections.items():
            collection.update(*views[kind]())

    def _flat(self, spec: MetricSpec, value: Tensor) -> dict[str, Tensor]:
        key = f"{self.stage}/{spec.key}"
        if not spec.per_class:
            return {key: value}
        return {f"{key}/{name}": v for name, v in zip(self.class_names, value, strict=True)}

    def compute(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for collection in self.collections.values():
            for name, value in collection.compute().items():
                out.update(self._flat(self.specs[name], value))
        return out

    def from_counts(self, counts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The ``from_counts`` metrics of per-image counts (:class:`~upseg.metrics.PerImageScores`)."""
        out: dict[str, Tensor] = {}
        for spec in self.counted:
            out.update(self._flat(spec, spec.from_counts(counts)))  # type: ignore[misc]
        return out

    def reset(self) -> None:
        for collection in self.collections.values():
            collection.reset()


def nest(logged: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Logged values (``<split>/<key>[/<class>]``, tensors or numbers) → the ``metrics.json`` form: numbers, and per
    class ``{prefix}<split>/<key>: {class name: value}`` in class order."""
    per_class = [spec.key for spec in METRICS.values() if spec.per_class]
    out: dict[str, Any] = {}
    for name, value in logged.items():
        value = value.item() if isinstance(value, torch.Tensor) else value
        split, _, rest = name.partition("/")
        key = next((k for k in per_class if rest.startswith(f"{k}/")), None)
        if key is None:
            out[f"{prefix}{name}"] = value
        else:
            out.setdefault(f"{prefix}{split}/{key}", {})[rest.removeprefix(f"{key}/")] = value
    return out


def metric_columns(split: str = "test") -> list[Column]:
    """The scalar metrics of a run, in the order summaries and comparisons show them: the headline metrics of the final
    weights and of the best checkpoint, the best validation mIoU, then the other scalars of the final weights."""
    scalars = specs(per_class=False)
    headline = [spec for spec in scalars if spec.headline]
    return (
        [Column(f"{split}/{spec.key}", f"{spec.label} final", spec.digits) for spec in headline]
        + [Column(f"best/{split}/{spec.key}", f"{spec.label} best", spec.digits) for spec in headline]
        + [Column("val/mIoU", "val mIoU best", METRICS["mIoU"].digits)]
        + [Column(f"{split}/{spec.key}", f"{spec.label} final", spec.digits) for spec in scalars if not spec.headline]
    )


def formatted(value: Any, digits: int) -> str:
    """A metric or cost value as tables show it."""
    return (
        f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
    )
