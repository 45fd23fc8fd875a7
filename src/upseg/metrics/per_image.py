"""Per-image scores: for every evaluated image, the IoU and boundary-IoU intersection and union pixel counts per class,
so that any per-image or pooled score can be recomputed later (and test images resampled for confidence intervals).

``update(preds, target, indices)`` takes ``N×H×W`` class indices and the images' dataset indices. IoU counts are
``|P_c ∧ G_c ∧ V|`` and ``|(P_c ∨ G_c) ∧ V|`` with ``V`` the pixels whose target is not ``ignore_index`` (as
torchmetrics' Jaccard index counts them); boundary counts are :func:`~upseg.metrics.boundary_iou.boundary_counts`.
States are concatenated across processes; an image seen twice (a distributed sampler pads the last batch with
repeats) is kept once, so pooled scores count every image exactly once.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from upseg.metrics.boundary_iou import boundary_counts, check_band, iou_from_counts

COUNTS = ("intersection", "union", "boundary_intersection", "boundary_union")


def iou_counts(preds: Tensor, target: Tensor, num_classes: int, ignore_index: int | None) -> tuple[Tensor, Tensor]:
    """Per image and class, intersection and union pixel counts (two ``N×C`` int64 tensors)."""
    classes = torch.arange(num_classes, device=target.device)[None, :, None, None]
    valid = (target != ignore_index)[:, None] if ignore_index is not None else True
    predicted = (preds[:, None] == classes) & valid
    actual = (target[:, None] == classes) & valid
    return (predicted & actual).sum((2, 3)), (predicted | actual).sum((2, 3))


class PerImageScores(Metric):
    """Collects :data:`COUNTS` per image; :meth:`compute` returns them (``N×C`` each, images in index order) with the
    ``index`` of each image. The boundary band is ``band_pixels`` wide when given, else ``dilation_ratio`` × the
    diagonal."""

    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        dilation_ratio: float = 0.02,
        band_pixels: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_band(dilation_ratio, band_pixels)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.dilation_ratio = dilation_ratio
        self.band_pixels = band_pixels
        self.add_state("index", [], dist_reduce_fx="cat")
        for name in COUNTS:
            self.add_state(name, [], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor, indices: Tensor) -> None:
        intersection, union = iou_counts(preds, target, self.num_classes, self.ignore_index)
        boundary = boundary_counts(
            preds, target, self.num_classes, self.ignore_index, self.dilation_ratio, self.band_pixels
        )
        self.index.append(torch.as_tensor(indices, device=target.device).long())
        for name, value in zip(COUNTS, (intersection, union, *boundary), strict=True):
            getattr(self, name).append(value)

    def compute(self) -> dict[str, Tensor]:
        if isinstance(self.index, list) and not self.index:  # after a distributed sync the lists are tensors
            return {"index": torch.zeros(0, dtype=torch.long)} | {
                name: torch.zeros(0, self.num_classes, dtype=torch.long) for name in COUNTS
            }
        index = dim_zero_cat(self.index)
        order = torch.argsort(index, stable=True)
        index = index[order]
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        keep = order[first]
        return {"index": index[first]} | {name: dim_zero_cat(getattr(self, name))[keep] for name in COUNTS}


def pooled_scores(counts: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-class IoU and boundary IoU of all images pooled (NaN where a class's union is 0), and their macro means."""
    iou = iou_from_counts(counts["intersection"].sum(0), counts["union"].sum(0), "none")
    biou = iou_from_counts(counts["boundary_intersection"].sum(0), counts["boundary_union"].sum(0), "none")
    return {"IoU": iou, "mIoU": iou.nanmean(), "bIoU": biou, "mbIoU": biou.nanmean()}
