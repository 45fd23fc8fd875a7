"""Boundary IoU (Cheng et al., CVPR 2021) for semantic segmentation: IoU measured only in a band along each class's
contour, so it rewards sharp, well-placed boundaries where mIoU is dominated by object interiors.

For an image of ``H×W`` pixels the band width is ``d = max(1, round(dilation_ratio · sqrt(H² + W²)))``, or a fixed
``d = band_pixels`` when that is given (for thin structures: DRIVE's vessels are 1–3 px wide, narrower than 2 % of any
diagonal, so a relative band would cover them whole and boundary IoU would repeat IoU). For a binary
mask ``M`` its boundary band is ``B(M) = M ∧ ¬erode(M, d)``, where ``erode(·, d)`` is ``d`` erosions by the 3×3
square — one erosion by the ``(2d+1)×(2d+1)`` square — and pixels outside the image count as background (zero
padding, as the authors' code pads before ``cv2.erode``). Per class ``c``, with ``G = (target == c)``,
``P = (preds == c)`` and ``V`` the pixels whose target is not ``ignore_index``:

    intersection_c = |B(G) ∧ B(P) ∧ V|,   union_c = |(B(G) ∨ B(P)) ∧ V|,

summed over the evaluated images; boundary IoU per class is ``intersection_c / union_c`` and the macro score is the
mean over classes whose union is non-zero. Unlike detectron2's semantic variant, which erodes the whole label map,
each class is eroded on its own, which is right for any number of classes.

Erosion is a max-pool of the complement (``erode(M) = ¬maxpool(¬M)``), done as two 1-D max-pools (a square is
separable), for all images of a batch and a chunk of classes at once, on the tensors' device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

# Classes per erosion call are chosen so one chunk holds about this many mask values (bounds temporary memory).
CHUNK_VALUES = 2**25


def band_width(height: int, width: int, dilation_ratio: float) -> int:
    """``d = max(1, round(dilation_ratio · image diagonal))``, the boundary band's width in pixels."""
    return max(1, round(dilation_ratio * math.hypot(height, width)))


def check_band(dilation_ratio: float, band_pixels: int | None = None) -> None:
    """A band of ``band_pixels`` pixels (a positive int) when given, else of ``dilation_ratio`` (positive) × the
    diagonal."""
    if band_pixels is not None:
        if isinstance(band_pixels, bool) or not isinstance(band_pixels, int) or band_pixels < 1:
            raise ValueError(f"band_pixels must be a positive int (the band's width in pixels), got {band_pixels!r}")
        return
    if not dilation_ratio > 0:
        raise ValueError(
            f"dilation_ratio must be positive (a fraction of the image diagonal, e.g. 0.02), got {dilation_ratio}"
        )


def boundary_band(masks: Tensor, width: int) -> Tensor:
    """``B(M) = M ∧ ¬erode(M, width)`` of boolean masks ``…×H×W`` (pixels outside the image are background)."""
    shape = masks.shape
    flat = masks.reshape(-1, 1, *shape[-2:])
    dtype = torch.float16 if masks.is_cuda else torch.float32  # max-pool has no boolean kernel
    outside = F.pad((~flat).to(dtype), (width, width, width, width), value=1.0)
    size = 2 * width + 1
    touches_outside = F.max_pool2d(F.max_pool2d(outside, (1, size), stride=1), (size, 1), stride=1)
    return (flat & (touches_outside > 0)).reshape(shape)


def boundary_counts(
    preds: Tensor,
    target: Tensor,
    num_classes: int,
    ignore_index: int | None,
    dilation_ratio: float,
    band_pixels: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Per image and class, boundary intersection and union pixel counts (two ``N×C`` int64 tensors) of
    ``preds`` and ``target`` (``N×H×W`` class indices); the band is ``band_pixels`` wide when given."""
    if preds.shape != target.shape or preds.dim() != 3:
        raise ValueError(f"preds and target must both be N×H×W, got {tuple(preds.shape)} and {tuple(target.shape)}")
    n, height, width = target.shape
    band = band_pixels if band_pixels is not None else band_width(height, width, dilation_ratio)
    valid = (target != ignore_index) if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    intersection = torch.zeros(n, num_classes, dtype=torch.long, device=target.device)
    union = torch.zeros_like(intersection)
    chunk = max(1, CHUNK_VALUES // max(1, n * height * width))
    for start in range(0, num_classes, chunk):
        classes = torch.arange(start, min(start + chunk, num_classes), device=target.device)[None, :, None, None]
        target_band = boundary_band(target[:, None] == classes, band)
        pred_band = boundary_band(preds[:, None] == classes, band)
        counted = valid[:, None]
        intersection[:, classes.flatten()] = (target_band & pred_band & counted).sum((2, 3))
        union[:, classes.flatten()] = ((target_band | pred_band) & counted).sum((2, 3))
    return intersection, union


def iou_from_counts(intersection: Tensor, union: Tensor, average: str = "macro") -> Tensor:
    """Per-class ``intersection / union`` (NaN where the union is 0), or with ``average="macro"`` their mean over the
    classes with a non-zero union (NaN if there is none)."""
    per_class = torch.where(union > 0, intersection.double() / union.clamp_min(1).double(), float("nan"))
    if average == "none":
        return per_class.float()
    return per_class.nanmean().float()


class BoundaryIoU(Metric):
    """Streaming boundary IoU (see the module docstring); ``average`` is ``"macro"`` or ``"none"`` (per class);
    ``band_pixels``, when given, replaces ``dilation_ratio``."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        dilation_ratio: float = 0.02,
        average: str = "macro",
        band_pixels: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_band(dilation_ratio, band_pixels)
        if average not in ("macro", "none"):
            raise ValueError(f"average must be 'macro' or 'none', got {average!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.dilation_ratio = dilation_ratio
        self.band_pixels = band_pixels
        self.average = average
        self.add_state("intersection", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("union", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        intersection, union = boundary_counts(
            preds, target, self.num_classes, self.ignore_index, self.dilation_ratio, self.band_pixels
        )
        self.intersection += intersection.sum(0)
        self.union += union.sum(0)

    def compute(self) -> Tensor:
        return iou_from_counts(self.intersection, self.union, self.average)
