"""mIoU as torchmetrics computes it, against an independent confusion-matrix computation; the checkerboard score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers.metrics import catalogue_metrics
from upseg.metrics import CheckerboardScore, checkerboard_score
from upseg.upsample import build_upsampler

IGNORE = 255


def reference_scores(predictions: np.ndarray, targets: np.ndarray, num_classes: int) -> dict[str, object]:
    """IoU from a confusion matrix built with numpy: ignore pixels dropped; classes absent from both prediction and
    target (union 0) are left out of the mean."""
    keep = targets != IGNORE
    matrix = np.bincount(targets[keep] * num_classes + predictions[keep], minlength=num_classes**2)
    matrix = matrix.reshape(num_classes, num_classes).astype(float)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    return {"mIoU": iou[union > 0].mean(), "IoU": iou, "acc": tp.sum() / matrix.sum()}


@pytest.mark.parametrize("seed", range(5))
def test_torchmetrics_miou_matches_an_independent_confusion_matrix(seed):
    rng = np.random.default_rng(seed)
    num_classes = 6
    targets = rng.integers(0, 4, size=(3, 17, 23))  # classes 4 and 5 never appear in the target...
    predictions = np.where(rng.random(targets.shape) < 0.7, targets, rng.integers(0, 5, size=targets.shape))
    # ...class 4 appears only in predictions (IoU 0, counted); class 5 nowhere (left out of the mean).
    targets[rng.random(targets.shape) < 0.2] = IGNORE
    metrics = catalogue_metrics(num_classes, IGNORE)
    for batch in range(3):  # streamed, as in validation
        metrics.update(torch.from_numpy(predictions[batch : batch + 1]), torch.from_numpy(targets[batch : batch + 1]))
    computed = metrics.compute()
    expected = reference_scores(predictions.ravel(), targets.ravel(), num_classes)
    torch.testing.assert_close(computed["mIoU"].double(), torch.tensor(expected["mIoU"], dtype=torch.float64))
    torch.testing.assert_close(computed["IoU"].double(), torch.from_numpy(expected["IoU"]))
    torch.testing.assert_close(computed["acc"].double(), torch.tensor(expected["acc"], dtype=torch.float64))
    assert computed["IoU"][5] == 0 and computed["IoU"][4] == 0


def test_ignored_pixels_do_not_count():
    targets = torch.tensor([[[0, 1, IGNORE, IGNORE]]])
    right = torch.tensor([[[0, 1, 0, 0]]])
    wrong_where_ignored = torch.tensor([[[0, 1, 1, 1]]])
    for predictions in (right, wrong_where_ignored):
        metrics = catalogue_metrics(2, IGNORE)
        metrics.update(predictions, targets)
        assert metrics.compute()["mIoU"] == 1.0


def upsample_nearest(x: torch.Tensor, s: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=s, mode="nearest")


@pytest.mark.parametrize("period", [2, 3, 4])
def test_checkerboard_score_is_zero_for_phase_uniform_and_one_for_a_pure_checkerboard(period):
    x = torch.randn(2, 3, 9, 7)
    assert checkerboard_score(upsample_nearest(x, period), period) == pytest.approx(0.0, abs=1e-7)
    pattern = torch.randn(3, period, period).repeat(1, 9, 7).unsqueeze(0)
    assert checkerboard_score(pattern, period) == pytest.approx(1.0, abs=1e-6)
    mixed = upsample_nearest(x, period) + 0.5 * pattern
    assert 0.2 < checkerboard_score(mixed, period) < 0.9


def test_checkerboard_score_streams_and_honours_the_mask():
    maps = torch.randn(4, 2, 12, 12) + torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(6, 6)
    streamed = CheckerboardScore(2)
    for i in range(4):
        streamed.update(maps[i : i + 1])
    assert float(streamed.compute()) == pytest.approx(checkerboard_score(maps, 2), rel=1e-6)
    valid = torch.zeros(4, 12, 12, dtype=torch.bool)
    valid[:, :6, :6] = True
    corrupted = maps.clone()
    corrupted[..., 6:, :] = 1000.0 * torch.randn_like(corrupted[..., 6:, :])  # masked-out garbage
    assert checkerboard_score(corrupted, 2, valid) == pytest.approx(checkerboard_score(maps[..., :6, :6], 2), rel=1e-6)


def test_checkerboard_score_separates_upsamplers_at_initialisation():
    """ICNR pixel shuffle is phase-uniform by construction; a randomly initialised one is not."""
    torch.manual_seed(0)
    x = torch.randn(8, 16, 12, 12)
    with torch.no_grad():
        icnr = checkerboard_score(build_upsampler("pixelshuffle", 16, 8, 2, init="icnr")(x), 2)
        plain = checkerboard_score(build_upsampler("pixelshuffle", 16, 8, 2, init="default")(x), 2)
        nearest = checkerboard_score(build_upsampler("nearest", 16, 8, 2)(x), 2)
    assert icnr == pytest.approx(0.0, abs=1e-6)
    assert plain > 5 * max(nearest, 1e-3)


def test_binary_scores_match_an_independent_computation_inside_the_valid_region():
    from scipy.stats import rankdata

    rng = np.random.default_rng(11)
    target = (rng.random((3, 40, 50)) < 0.15).astype(np.int64)  # thin positive class, like vessels
    probability = np.clip(0.6 * target + 0.5 * rng.random(target.shape), 0, 1)
    target[:, :5, :] = IGNORE  # outside the field of view
    names = ("Dice", "sensitivity", "specificity", "accuracy", "AUC")
    metrics = catalogue_metrics(2, IGNORE, [f"binary/{name}" for name in names])
    for image in range(3):
        metrics.update(
            torch.from_numpy(probability[image : image + 1]).float(), torch.from_numpy(target[image : image + 1])
        )
    computed = {key.removeprefix("binary__"): float(value) for key, value in metrics.compute().items()}

    valid = target != IGNORE
    truth, score = target[valid] == 1, probability[valid]
    predicted = score > 0.5
    tp, tn = (predicted & truth).sum(), (~predicted & ~truth).sum()
    fp, fn = (predicted & ~truth).sum(), (~predicted & truth).sum()
    ranks = rankdata(score)  # Mann–Whitney: AUC from the ranks of the positives
    positives, negatives = truth.sum(), (~truth).sum()
    auc = (ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    assert computed["Dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
    assert computed["sensitivity"] == pytest.approx(tp / (tp + fn), abs=1e-6)
    assert computed["specificity"] == pytest.approx(tn / (tn + fp), abs=1e-6)
    assert computed["accuracy"] == pytest.approx((tp + tn) / valid.sum(), abs=1e-6)
    assert computed["AUC"] == pytest.approx(auc, abs=2e-3)  # binned at 1,001 thresholds
