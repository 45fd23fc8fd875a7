"""The catalogue's metrics built as the LightningModule builds them, for tests that feed them by hand."""

from __future__ import annotations

from collections.abc import Sequence

from torchmetrics import MetricCollection

from upseg.metrics.catalogue import METRICS, MetricContext


def catalogue_metrics(
    num_classes: int, ignore_index: int, keys: Sequence[str] = ("mIoU", "IoU", "acc")
) -> MetricCollection:
    """The catalogue metrics ``keys`` for ``num_classes`` classes, as one collection keyed by metric key."""
    context = MetricContext(num_classes, ignore_index)
    return MetricCollection({key.replace("/", "__"): METRICS[key].build(context) for key in keys}, compute_groups=True)
