"""A sweep over more than the decoder: runs are grouped by every swept key but the decoder and the seed, each group's
decoders are compared with its own baseline runs, and the interaction — how much a decoder's gain changes between
two groups — gets a paired bootstrap interval (checked against a brute-force bootstrap)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.sweeps import fake_run, image_counts
from upseg.analysis.bootstrap import pooled_miou
from upseg.analysis.compare import compare

IMAGES = 40
# The architecture's quality with each decoder: carafe gains 0.08 in the pyramid head and nothing in the U-Net.
QUALITY = {
    "model=unet": {"transpose": 0.70, "carafe": 0.70, "nearest": 0.70},
    "model=fpn": {"transpose": 0.60, "carafe": 0.68, "nearest": 0.60},
}
SEED_EFFECTS = [-0.02, 0.0, 0.02]  # shared by every decoder and architecture of a seed


def make_sweep(folder: Path, images: dict[str, int] | None = None) -> dict[tuple[str, str, int], dict]:
    """Runs of both architectures × 3 decoders × 3 seeds; returns their counts by (group, decoder, seed)."""
    rng = np.random.default_rng(0)
    runs, job = {}, 0
    for group, decoders in QUALITY.items():
        for decoder, quality in decoders.items():
            for seed, effect in enumerate(SEED_EFFECTS):
                counts = image_counts(rng, (images or {}).get(group, IMAGES), quality + effect)
                score = float(pooled_miou(counts["intersection"].sum(0), counts["union"].sum(0)))
                overrides = ["experiment=why", group, f"decoder={decoder}", f"seed={seed}"]
                overrides += ["resume=true"] if job % 2 else []  # a resumed sitting's runs carry the flag
                metrics = {"test/mIoU": score, "best/test/mIoU": score, "gflops": 1.0, "parameters": 5}
                fake_run(folder / str(job), decoder, seed, metrics, counts=counts, overrides=overrides)
                runs[(group, decoder, seed)] = counts
                job += 1
    return runs


def test_decoders_are_compared_within_each_group_and_their_gains_between_groups(tmp_path):
    make_sweep(tmp_path)
    sweep = compare(tmp_path, baseline="transpose", samples=1000)
    assert sweep.keys == ["model"] and list(sweep.groups) == ["model=unet", "model=fpn"]
    unet, fpn = (sweep.groups[group].differences["ΔmIoU final"] for group in sweep.groups)
    assert not unet["carafe"].excludes_zero and abs(unet["carafe"].estimate) < 0.01
    assert fpn["carafe"].excludes_zero and fpn["carafe"].low > 0.05
    assert not fpn["nearest"].excludes_zero
    gains = sweep.interactions["ΔmIoU final"][("model=unet", "model=fpn")]
    assert gains["carafe"].excludes_zero and gains["carafe"].estimate == pytest.approx(
        fpn["carafe"].estimate - unet["carafe"].estimate
    )
    assert not gains["nearest"].excludes_zero and "transpose" not in gains
    with pytest.raises(ValueError, match="2 groups"):
        sweep.differences  # noqa: B018 - a sweep of several groups has no single table of differences

    text = (tmp_path / "comparison.md").read_text()
    for heading in ("## model=unet", "## model=fpn", "### Against the baseline: transpose", "## Interactions"):
        assert f"\n{heading}" in text
    (carafe,) = [
        line for line in text.split("### model=fpn against model=unet")[1].splitlines() if line.startswith("| carafe |")
    ]
    assert "**≠0**" in carafe.split("|")[2]
    with open(tmp_path / "comparison.csv") as f:
        assert {row["group"] for row in csv.DictReader(f)} == {"model=unet", "model=fpn"}
    with open(tmp_path / "comparison_summary.csv") as f:
        assert [(row["group"], row["decoder"]) for row in csv.DictReader(f)][:2] == [
            ("model=unet", "transpose"),
            ("model=unet", "carafe"),
        ]
    with open(tmp_path / "comparison_interactions.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["score"] == "ΔmIoU final" and row["decoder"] == "carafe"]
    assert [(row["first"], row["second"], row["excludes_zero"]) for row in rows] == [
        ("model=unet", "model=fpn", "True")
    ]
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


def brute_force_interaction(runs: dict, decoder: str, samples: int, seed: int) -> tuple[float, float]:
    """ΔΔ written plainly: per replicate draw the images and the seeds once for everything, and recompute."""
    rng = np.random.default_rng(seed)

    def score(counts: dict, drawn: np.ndarray) -> float:
        intersection, union = counts["intersection"][drawn].sum(0), counts["union"][drawn].sum(0)
        return float(np.mean(intersection / union))

    def mean(group: str, name: str, images: np.ndarray, seeds: np.ndarray) -> float:
        return float(np.mean([score(runs[(group, name, s)], images) for s in seeds]))

    values = []
    for _ in range(samples):
        images, seeds = rng.integers(0, IMAGES, size=IMAGES), rng.integers(0, 3, size=3)
        gains = [mean(group, decoder, images, seeds) - mean(group, "transpose", images, seeds) for group in QUALITY]
        values.append(gains[1] - gains[0])
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def test_the_interaction_interval_agrees_with_a_brute_force_bootstrap(tmp_path):
    runs = make_sweep(tmp_path)
    sweep = compare(tmp_path, baseline="transpose", samples=3000, seed=3)
    interval = sweep.interactions["ΔmIoU final"][("model=unet", "model=fpn")]["carafe"]
    low, high = brute_force_interaction(runs, "carafe", samples=3000, seed=11)
    # Two independent Monte-Carlo estimates of the same percentiles: equal up to resampling noise.
    assert interval.low == pytest.approx(low, abs=0.004) and interval.high == pytest.approx(high, abs=0.004)


def test_groups_tested_on_different_images_get_differences_but_no_interactions(tmp_path):
    make_sweep(tmp_path, images={"model=fpn": IMAGES - 5})
    sweep = compare(tmp_path, baseline="transpose", samples=200)
    assert sweep.interactions == {}
    assert sweep.groups["model=fpn"].differences["ΔmIoU final"]["carafe"].excludes_zero
    assert "tested on different images" in (tmp_path / "comparison.md").read_text()


def test_a_swept_decoder_option_names_the_decoder_and_the_seed_never_makes_a_group(tmp_path):
    rng = np.random.default_rng(1)
    for job, (decoder, kernel, seed) in enumerate(
        [("transpose", None, 0), ("transpose", None, 1), ("carafe", 3, 0), ("carafe", 3, 1), ("carafe", 5, 0)]
    ):
        overrides = [f"decoder={decoder}", f"seed={seed}"] + ([f"decoder.options.up_kernel={kernel}"] if kernel else [])
        counts = image_counts(rng, 10, 0.7)
        fake_run(tmp_path / str(job), decoder, seed, {"test/mIoU": 0.7}, counts=counts, overrides=overrides)
    sweep = compare(tmp_path, samples=100)
    assert list(sweep.groups) == [""] and sweep.keys == []
    assert [entry["decoder"] for entry in sweep.table] == [
        "transpose",
        "carafe (options.up_kernel=3)",
        "carafe (options.up_kernel=5)",
    ]
    assert set(sweep.differences["ΔmIoU final"]) == {entry["decoder"] for entry in sweep.table}
