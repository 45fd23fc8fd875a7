"""The comparison of a sweep: means over seeds, paired bootstrap intervals against a baseline (checked against a
brute-force bootstrap), runs without per-image scores listed, and one clear error for a sweep it cannot compare."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.sweeps import CLASSES, fake_run, image_counts
from upseg.analysis.bootstrap import DecoderCounts, compare_decoders, pooled_miou, pooled_positive_dice
from upseg.analysis.compare import compare
from upseg.metrics.per_image import iou_counts
from upseg.metrics.results import read_per_image


def test_comparison_reports_mean_and_std_over_seeds_and_lists_failed_runs(scripts, tmp_path):
    fake_run(tmp_path / "0", "transpose", 0, {"test/mIoU": 0.80, "val/mIoU": 0.70, "parameters": 10})
    fake_run(tmp_path / "1", "transpose", 1, {"test/mIoU": 0.90, "val/mIoU": 0.72, "parameters": 10})
    fake_run(tmp_path / "2", "nearest", 0, {"test/mIoU": 0.50, "val/mIoU": 0.40, "parameters": 8})
    fake_run(tmp_path / "3", "nearest", 1, None, error="out of memory")
    comparison = compare(tmp_path)
    assert [row["status"] for row in comparison.rows] == ["ok", "ok", "ok", "failed"]
    by_decoder = {entry["decoder"]: entry for entry in comparison.table}
    mean, std = by_decoder["transpose"]["test/mIoU"]
    assert mean == pytest.approx(0.85) and std == pytest.approx(0.0707107, rel=1e-5)
    assert by_decoder["nearest"]["runs"] == 1 and by_decoder["nearest"]["failed"] == 1
    text = (tmp_path / "comparison.md").read_text()
    assert "| transpose | 2 | 0.8500 ± 0.0707 |" in text
    assert "## Failed runs (1)" in text and "decoder=nearest seed=1: ValueError: out of memory" in text
    # Older runs without per-image scores are listed, not silently dropped.
    assert "## Finished runs without per-image scores (3)" in text
    assert "per-image scores, so no interval can be computed" in text
    result = scripts.run("compare.py", str(tmp_path), root=tmp_path)
    assert result.returncode == 1 and "Failed runs (1)" in result.stdout


def test_paired_intervals_mark_a_real_difference_and_not_noise(tmp_path):
    rng = np.random.default_rng(0)
    images = 60
    qualities = {"transpose": 0.70, "carafe": 0.78, "nearest": 0.70}
    job = 0
    for decoder, quality in qualities.items():
        for seed in range(3):
            counts = image_counts(rng, images, quality + 0.005 * seed)
            score = float(pooled_miou(counts["intersection"].sum(0), counts["union"].sum(0)))
            metrics = {"test/mIoU": score, "best/test/mIoU": score, "gflops": 1.0 + job, "parameters": 5}
            fake_run(tmp_path / str(job), decoder, seed, metrics, counts=counts)
            job += 1
    comparison = compare(tmp_path, baseline="transpose", samples=1000)
    final = comparison.differences["ΔmIoU final"]
    assert final["carafe"].excludes_zero and final["carafe"].low > 0.04
    assert not final["nearest"].excludes_zero
    assert final["transpose"].estimate == 0 and not final["transpose"].excludes_zero
    # The point estimate is the difference of the mean over seeds of each run's pooled score.
    means = {entry["decoder"]: entry["test/mIoU"][0] for entry in comparison.table}
    assert final["carafe"].estimate == pytest.approx(means["carafe"] - means["transpose"])
    text = (tmp_path / "comparison.md").read_text()
    (carafe_line,) = [line for line in text.splitlines() if line.startswith("| carafe | +")]
    assert "**≠0**" in carafe_line
    (nearest_line,) = [
        line for line in text.splitlines() if line.startswith("| nearest | +") or line.startswith("| nearest | -")
    ]
    assert "**≠0**" not in nearest_line.split("|")[2]
    # Two classes: the class-1 Dice (vessel, membrane) gets its own paired interval, from the same per-image counts.
    dice = comparison.differences["Δclass-1 Dice final"]
    assert dice["carafe"].excludes_zero and not dice["nearest"].excludes_zero
    assert "Δclass-1 Dice final" in text


def test_class_1_dice_of_pooled_counts_is_torchmetrics_binary_dice_over_the_same_pixels():
    generator = torch.Generator().manual_seed(0)
    preds = torch.randint(0, 2, (5, 17, 23), generator=generator)
    target = torch.randint(0, 2, (5, 17, 23), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.2] = 255  # outside the field of view
    intersection, union = iou_counts(preds, target, 2, 255)
    dice = pooled_positive_dice(intersection.sum(0).numpy(), union.sum(0).numpy())
    from torchmetrics.classification import BinaryF1Score

    expected = BinaryF1Score(ignore_index=255)(preds, target)
    torch.testing.assert_close(torch.tensor(float(dice), dtype=torch.float64), expected.double())
    with pytest.raises(ValueError, match="two-class counts"):
        pooled_positive_dice(np.ones((2, 3)), np.ones((2, 3)))


def brute_force_bootstrap(
    decoder: list[dict[str, np.ndarray]],
    baseline: list[dict[str, np.ndarray]],
    samples: int,
    seed: int,
    paired_seeds: bool,
) -> tuple[float, float]:
    """The paired bootstrap written plainly: loop over replicates, draw image indices, draw seeds (one draw for both
    decoders when ``paired_seeds``; runs are listed in seed order), recompute."""
    rng = np.random.default_rng(seed)
    images = len(decoder[0]["union"])

    def score(run: dict[str, np.ndarray], drawn: np.ndarray) -> float:
        intersection, union = run["intersection"][drawn].sum(0), run["union"][drawn].sum(0)
        present = union > 0
        return float(np.mean(intersection[present] / union[present]))

    differences = []
    for _ in range(samples):
        drawn = rng.integers(0, images, size=images)
        seeds_d = rng.integers(0, len(decoder), size=len(decoder))
        seeds_b = seeds_d if paired_seeds else rng.integers(0, len(baseline), size=len(baseline))
        mean_d = np.mean([score(decoder[i], drawn) for i in seeds_d])
        differences.append(mean_d - np.mean([score(baseline[i], drawn) for i in seeds_b]))
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


@pytest.mark.parametrize("paired_seeds", [False, True])
def test_bootstrap_interval_agrees_with_a_brute_force_bootstrap(paired_seeds):
    rng = np.random.default_rng(1)
    # Seed effects shared by both decoders (as a seed's data order and encoder initialisation are): pairing on seeds
    # removes them from the difference.
    shared = [rng.normal(0, 0.03) for _ in range(3)]
    decoder = [image_counts(rng, 40, 0.72 + effect) for effect in shared]
    baseline = [image_counts(rng, 40, 0.70 + effect) for effect in shared]
    seeds = [0, 1, 2] if paired_seeds else None
    as_counts = {
        name: DecoderCounts([run["intersection"] for run in runs], [run["union"] for run in runs], seeds)
        for name, runs in (("decoder", decoder), ("baseline", baseline))
    }
    _, difference = compare_decoders(as_counts, "baseline", samples=4000, seed=5)
    low, high = brute_force_bootstrap(decoder, baseline, samples=4000, seed=6, paired_seeds=paired_seeds)
    # Two independent Monte-Carlo estimates of the same percentiles: equal up to resampling noise.
    assert difference["decoder"].low == pytest.approx(low, abs=0.004)
    assert difference["decoder"].high == pytest.approx(high, abs=0.004)


def test_pairing_on_seeds_narrows_the_interval_when_seeds_move_both_decoders():
    rng = np.random.default_rng(4)
    shared = [-0.05, 0.0, 0.05]
    decoder = [image_counts(rng, 40, 0.72 + effect) for effect in shared]
    baseline = [image_counts(rng, 40, 0.70 + effect) for effect in shared]
    widths = {}
    for seeds in (None, [0, 1, 2]):
        as_counts = {
            name: DecoderCounts([run["intersection"] for run in runs], [run["union"] for run in runs], seeds)
            for name, runs in (("decoder", decoder), ("baseline", baseline))
        }
        interval = compare_decoders(as_counts, "baseline", samples=2000)[1]["decoder"]
        widths[seeds is not None] = interval.high - interval.low
    assert widths[True] < widths[False] / 2


def test_per_image_file_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    counts = image_counts(rng, 5, 0.5)
    fake_run(tmp_path / "run", "transpose", 0, {"test/mIoU": 0.5}, counts=counts)
    read = read_per_image(tmp_path / "run" / "per_image.csv")
    assert read.class_names == CLASSES and read.names[3] == "img_003.png" and read.index.tolist() == list(range(5))
    for name, value in counts.items():
        np.testing.assert_array_equal(read.counts[name], value)


@pytest.mark.parametrize(
    ("runs", "arguments", "message"),
    [
        ([], [], "holds no runs"),
        ([("transpose", None), ("bilinear", None)], [], "no run in"),
        ([("nearest", 0.5), ("bilinear", 0.6)], [], "compare.baseline=transpose is not among the finished decoders"),
        ([("nearest", 0.5), ("bilinear", 0.6)], ["--baseline", "carafe"], "compare.baseline=carafe is not among"),
    ],
)
def test_a_sweep_that_cannot_be_compared_is_one_clear_error(scripts, tmp_path, runs, arguments, message):
    for job, (decoder, score) in enumerate(runs):
        fake_run(tmp_path / str(job), decoder, 0, None if score is None else {"test/mIoU": score})
    result = scripts.run("compare.py", str(tmp_path), *arguments, root=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stderr.startswith("error: ")


def test_a_one_decoder_sweep_needs_no_baseline(tmp_path):
    fake_run(tmp_path / "0", "carafe", 0, {"test/mIoU": 0.5})
    fake_run(tmp_path / "1", "carafe", 1, {"test/mIoU": 0.6})
    comparison = compare(tmp_path)
    assert comparison.baseline is None and comparison.differences == {}
    assert "none (one decoder" in (tmp_path / "comparison.md").read_text()


def test_a_null_baseline_lists_the_runs_without_intervals(tmp_path):
    # What hparams_search=optuna sets: its trials differ in more than the decoder.
    fake_run(tmp_path / "0", "carafe", 0, {"test/mIoU": 0.5})
    fake_run(tmp_path / "1", "nearest", 0, {"test/mIoU": 0.6})
    comparison = compare(tmp_path, baseline=None)
    assert comparison.baseline is None and comparison.differences == {} and len(comparison.table) == 2
