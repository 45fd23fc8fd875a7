"""Boundary IoU against an independent implementation (scipy's binary erosion, one image and class at a time), on
hand-drawn and random masks; per-image counts against torchmetrics' mIoU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_erosion

from tests.helpers.metrics import catalogue_metrics
from upseg.metrics import BoundaryIoU, PerImageScores, boundary_band, pooled_scores

IGNORE = 255
SQUARE = np.ones((3, 3), dtype=bool)


def reference_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Cheng et al.'s boundary: the mask minus its erosion, ``width`` times by the 3×3 square, zero outside."""
    return mask & ~binary_erosion(mask, structure=SQUARE, iterations=width, border_value=0)


def reference_counts(
    preds: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore: int | None,
    ratio: float,
    pixels: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    intersection = np.zeros(num_classes, dtype=np.int64)
    union = np.zeros(num_classes, dtype=np.int64)
    for pred_map, target_map in zip(preds, target, strict=True):
        height, width = target_map.shape
        d = pixels if pixels is not None else max(1, int(round(ratio * math.sqrt(height**2 + width**2))))
        valid = target_map != ignore if ignore is not None else np.ones_like(target_map, dtype=bool)
        for c in range(num_classes):
            g, p = reference_band(target_map == c, d), reference_band(pred_map == c, d)
            intersection[c] += (g & p & valid).sum()
            union[c] += ((g | p) & valid).sum()
    return intersection, union


def reference_biou(intersection: np.ndarray, union: np.ndarray) -> tuple[float, np.ndarray]:
    per_class = np.full(len(union), np.nan)
    present = union > 0
    per_class[present] = intersection[present] / union[present]
    return float(per_class[present].mean()), per_class


def random_maps(rng: np.random.Generator, n: int, height: int, width: int, num_classes: int) -> tuple:
    """Blobby targets (a coarse grid upsampled, so bands are not the whole image) and noisy predictions."""
    coarse = rng.integers(0, num_classes, size=(n, height // 4 + 1, width // 4 + 1))
    target = coarse.repeat(4, axis=1).repeat(4, axis=2)[:, :height, :width]
    shifted = np.roll(target, shift=int(rng.integers(-2, 3)), axis=2)
    preds = np.where(rng.random(target.shape) < 0.9, shifted, rng.integers(0, num_classes, size=target.shape))
    return preds, target


def metric_value(metric: BoundaryIoU, preds: np.ndarray, target: np.ndarray, batch: int = 2) -> torch.Tensor:
    for start in range(0, len(preds), batch):  # streamed, as in validation
        metric.update(torch.from_numpy(preds[start : start + batch]), torch.from_numpy(target[start : start + batch]))
    return metric.compute()


@pytest.mark.parametrize("width", [1, 2, 5])
@pytest.mark.parametrize("shape", [(9, 9), (13, 22), (31, 17)])
def test_boundary_band_matches_scipy_erosion(width, shape):
    rng = np.random.default_rng(width * 100 + shape[0])
    masks = rng.random((3, *shape)) < 0.7
    masks[0] = True  # a full image: its band is the frame of width `width` (the outside is background)
    got = boundary_band(torch.from_numpy(masks), width).numpy()
    for mask, band in zip(masks, got, strict=True):
        np.testing.assert_array_equal(band, reference_band(mask, width))


def test_hand_drawn_square_bands():
    # A 4×4 image all of class 1 and a prediction all of class 0, d=1: the band of the full mask is its 12 border
    # pixels; class 1: nothing predicted, union 12; class 0: nothing in the target, union 12. Both IoU 0.
    target = np.ones((1, 4, 4), dtype=np.int64)
    preds = np.zeros_like(target)
    metric = BoundaryIoU(2, dilation_ratio=0.1, average="none")  # 0.1 · √32 = 0.57 → d = 1
    assert metric_value(metric, preds, target).tolist() == [0.0, 0.0]
    assert metric.union.tolist() == [12, 12]
    # A 6×6 image whose right half (3 columns) is class 1: class 1's band is its 18 pixels but the 4 whose 3×3
    # neighbourhood lies in the right half (rows 1–4, column 4) → 14; class 0 likewise 14. A perfect prediction.
    target = np.zeros((1, 6, 6), dtype=np.int64)
    target[:, :, 3:] = 1
    metric = BoundaryIoU(2, dilation_ratio=0.1, average="none")  # 0.1 · √72 = 0.85 → d = 1
    assert metric_value(metric, target.copy(), target).tolist() == [1.0, 1.0]
    assert metric.intersection.tolist() == [14, 14]
    # Ignore the right column, where the prediction still says class 1. The target's class 1 is now columns 3–4,
    # all 12 pixels band (each touches class 0 or the ignored column); the prediction's class 1 keeps its 14-pixel
    # band, of which the 6 in column 5 are ignored. Intersection: column 3 and the two corners of column 4 → 8;
    # union: the 12. Class 0 is unchanged (14 of 14).
    target[:, :, 5] = IGNORE
    metric = BoundaryIoU(2, ignore_index=IGNORE, dilation_ratio=0.1, average="none")
    metric_value(metric, np.where(target == IGNORE, 1, target), target)
    assert metric.intersection.tolist() == [14, 8]
    assert metric.union.tolist() == [14, 12]


@pytest.mark.parametrize("ratio", [0.02, 0.05, 0.15])
@pytest.mark.parametrize(("shape", "num_classes"), [((37, 53), 3), ((64, 41), 5), ((97, 96), 2)])
def test_boundary_iou_matches_independent_implementation(ratio, shape, num_classes):
    rng = np.random.default_rng(int(ratio * 1000) + num_classes)
    preds, target = random_maps(rng, 5, *shape, num_classes)
    target[rng.random(target.shape) < 0.1] = IGNORE
    target[:, :3, :] = IGNORE  # a band of ignore, as padding gives
    intersection, union = reference_counts(preds, target, num_classes, IGNORE, ratio)
    expected_mean, expected_per_class = reference_biou(intersection, union)

    macro = BoundaryIoU(num_classes, ignore_index=IGNORE, dilation_ratio=ratio)
    per_class = BoundaryIoU(num_classes, ignore_index=IGNORE, dilation_ratio=ratio, average="none")
    torch.testing.assert_close(metric_value(macro, preds, target), torch.tensor(expected_mean, dtype=torch.float32))
    torch.testing.assert_close(
        metric_value(per_class, preds, target), torch.from_numpy(expected_per_class).float(), equal_nan=True
    )
    assert macro.intersection.tolist() == intersection.tolist()
    assert macro.union.tolist() == union.tolist()


@pytest.mark.parametrize("pixels", [1, 2, 3])
def test_a_band_in_pixels_matches_the_independent_implementation_at_any_image_size(pixels):
    # A relative band grows with the image (2 % of a DRIVE photo's diagonal is 16 px); one in pixels does not.
    rng = np.random.default_rng(pixels)
    for shape in ((40, 33), (120, 97)):
        preds, target = random_maps(rng, 3, *shape, 3)
        target[rng.random(target.shape) < 0.1] = IGNORE
        intersection, union = reference_counts(preds, target, 3, IGNORE, ratio=0.5, pixels=pixels)
        metric = BoundaryIoU(3, ignore_index=IGNORE, dilation_ratio=0.5, band_pixels=pixels)  # the ratio is unused
        per_image = PerImageScores(3, ignore_index=IGNORE, band_pixels=pixels)
        metric_value(metric, preds, target)
        per_image.update(torch.from_numpy(preds), torch.from_numpy(target), torch.arange(len(preds)))
        assert metric.intersection.tolist() == intersection.tolist() and metric.union.tolist() == union.tolist()
        counts = per_image.compute()
        assert counts["boundary_intersection"].sum(0).tolist() == intersection.tolist()
        assert counts["boundary_union"].sum(0).tolist() == union.tolist()


@pytest.mark.parametrize("pixels", [0, -1, 1.5, True])
def test_a_band_that_is_not_a_positive_int_of_pixels_is_refused(pixels):
    with pytest.raises(ValueError, match="band_pixels must be a positive int"):
        BoundaryIoU(2, band_pixels=pixels)


def test_absent_class_is_nan_per_class_and_left_out_of_the_mean():
    rng = np.random.default_rng(3)
    preds, target = random_maps(rng, 2, 24, 24, 2)  # classes 0 and 1 only; class 2 nowhere
    value = metric_value(BoundaryIoU(3, dilation_ratio=0.05, average="none"), preds, target)
    assert torch.isnan(value[2]) and not torch.isnan(value[:2]).any()
    macro = metric_value(BoundaryIoU(3, dilation_ratio=0.05), preds, target)
    torch.testing.assert_close(macro, value[:2].mean())


@pytest.mark.parametrize("ratio", [0, -0.01])
def test_non_positive_dilation_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match="dilation_ratio must be positive"):
        BoundaryIoU(2, dilation_ratio=ratio)


def test_per_image_counts_pool_to_torchmetrics_miou_and_boundary_iou():
    rng = np.random.default_rng(7)
    preds, target = random_maps(rng, 6, 30, 26, 4)
    target[rng.random(target.shape) < 0.15] = IGNORE
    per_image = PerImageScores(4, ignore_index=IGNORE, dilation_ratio=0.05)
    reference = catalogue_metrics(4, IGNORE)
    boundary = BoundaryIoU(4, ignore_index=IGNORE, dilation_ratio=0.05)
    # Fed out of order and with one image twice (as a distributed sampler's padding repeats one): kept once.
    for indices in ([3, 4], [0, 1, 2], [5, 0]):
        batch_preds, batch_target = torch.from_numpy(preds[indices]), torch.from_numpy(target[indices])
        per_image.update(batch_preds, batch_target, torch.tensor(indices))
    for start in range(0, 6, 2):
        reference.update(torch.from_numpy(preds[start : start + 2]), torch.from_numpy(target[start : start + 2]))
        boundary.update(torch.from_numpy(preds[start : start + 2]), torch.from_numpy(target[start : start + 2]))
    counts = per_image.compute()
    assert counts["index"].tolist() == list(range(6))
    assert counts["intersection"].shape == (6, 4)
    scores = pooled_scores(counts)
    torch.testing.assert_close(scores["mIoU"], reference.compute()["mIoU"])
    torch.testing.assert_close(scores["mbIoU"], boundary.compute())
