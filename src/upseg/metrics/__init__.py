"""Metrics torchmetrics does not have: boundary IoU, per-image scores and the checkerboard score of logits."""

from upseg.metrics.boundary_iou import BoundaryIoU, band_width, boundary_band, boundary_counts, iou_from_counts
from upseg.metrics.checkerboard import CheckerboardScore, checkerboard_score, phase_index
from upseg.metrics.per_image import COUNTS, PerImageScores, iou_counts, pooled_scores

__all__ = [
    "COUNTS",
    "BoundaryIoU",
    "CheckerboardScore",
    "PerImageScores",
    "band_width",
    "boundary_band",
    "boundary_counts",
    "checkerboard_score",
    "iou_counts",
    "iou_from_counts",
    "phase_index",
    "pooled_scores",
]
