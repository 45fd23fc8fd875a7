"""A comparison of upsamplers from a sweep's runs: per decoder the mean ± standard deviation over seeds of every
catalogue metric and cost, and against a baseline decoder the paired bootstrap interval of each difference.

- mean ± sample standard deviation over seeds of the catalogue's scalar metrics (:func:`upseg.metrics.catalogue.
  metric_columns`), for the **final** weights (the headline) and, for the headline metrics, the
  **best-by-validation** checkpoint;
- against a baseline decoder, the difference in mIoU and boundary IoU (and the class-1 Dice on two-class data) with
  a bootstrap confidence interval that resamples test images (paired: the same images for both decoders) and seeds
  (:mod:`upseg.analysis.bootstrap`), from the runs' ``per_image*.csv``; a finished run without them (an older run) is
  listed and left out of the intervals;
- cost: the catalogue's cost columns (parameters, GFLOPs of one forward pass, training images/s, inference ms per
  image, peak memory, training seconds).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upseg.analysis.bootstrap import DecoderCounts, Interval, Score, compare_decoders, pooled_miou, pooled_positive_dice
from upseg.analysis.sweep import per_image_counts, read_run, run_folders, val_curve
from upseg.errors import ConfigError, DataError
from upseg.metrics.catalogue import COST_COLUMNS, metric_columns
from upseg.metrics.results import PER_IMAGE_FILES, PerImageCounts

# (per-image file, count prefix, label, score, number of classes it needs or None): the paired differences against
# the baseline; the class-1 Dice (vessel, cell) only on two-class data
DIFFERENCES = [
    ("final", "", "ΔmIoU final", pooled_miou, None),
    ("final", "boundary_", "ΔbIoU final", pooled_miou, None),
    ("best", "", "ΔmIoU best", pooled_miou, None),
    ("best", "boundary_", "ΔbIoU best", pooled_miou, None),
    ("final", "", "Δclass-1 Dice final", pooled_positive_dice, 2),
]


@dataclass
class Comparison:
    rows: list[dict[str, Any]]  # one per run
    table: list[dict[str, Any]]  # one per decoder
    baseline: str | None
    differences: dict[str, dict[str, Interval]] = field(default_factory=dict)  # label → decoder → interval
    intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)  # label → decoder → own interval
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # decoder → epoch → mean val mIoU


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def by_decoder(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by decoder, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row["decoder"])].append(row)
    return dict(groups)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per decoder over its finished runs: (mean, std) of every catalogue metric and cost column."""
    table = []
    for decoder, runs in by_decoder(rows).items():
        ok = [run for run in runs if run["status"] == "ok"]
        entry: dict[str, Any] = {"decoder": decoder, "runs": len(ok), "failed": len(runs) - len(ok)}
        for key in [column.key for column in metric_columns()] + [column.key for column in COST_COLUMNS]:
            values = [float(run[key]) for run in ok if run.get(key) is not None]
            entry[key] = mean_std(values) if values else None
        entry["cost_input"] = next((run["cost_input"] for run in ok if run.get("cost_input")), None)
        table.append(entry)
    return table


def aligned(
    counts: dict[str, list[tuple[Any, PerImageCounts]]], prefix: str, score: Score = pooled_miou
) -> dict[str, DecoderCounts]:
    """Counts as :class:`DecoderCounts`, images ordered by index; every run must hold the same test images."""
    first_decoder = next(iter(counts))
    reference = sorted(counts[first_decoder][0][1].index.tolist())
    for decoder, runs in counts.items():
        for _, run in runs:
            if sorted(run.index.tolist()) != reference:
                raise DataError(
                    f"the runs of decoder {decoder} and {first_decoder} were tested on different images "
                    f"({len(run.index)} and {len(reference)}); compare only runs on the same test set"
                )
    out = {}
    for decoder, runs in counts.items():
        orders = [run.index.argsort() for _, run in runs]
        seeds = [seed for seed, _ in runs]
        out[decoder] = DecoderCounts(
            [run.counts[f"{prefix}intersection"][order] for (_, run), order in zip(runs, orders, strict=True)],
            [run.counts[f"{prefix}union"][order] for (_, run), order in zip(runs, orders, strict=True)],
            seeds if all(isinstance(seed, int) for seed in seeds) else None,
            score,
        )
    return out


def paired_intervals(comparison: Comparison, samples: int, confidence: float, seed: int) -> None:
    """Fill ``comparison.differences`` and ``.intervals`` from the runs' per-image files."""
    files = {which: per_image_counts(comparison.rows, which) for which in PER_IMAGE_FILES}  # each file read once
    for which, prefix, label, score, needs_classes in DIFFERENCES:
        counts = files[which]
        if comparison.baseline not in counts:
            continue
        classes = counts[comparison.baseline][0][1].counts[f"{prefix}intersection"].shape[1]
        if needs_classes is not None and classes != needs_classes:
            continue
        own, difference = compare_decoders(
            aligned(counts, prefix, score), comparison.baseline, samples=samples, confidence=confidence, seed=seed
        )
        comparison.differences[label], comparison.intervals[label] = difference, own


def check_sweep(rows: list[dict[str, Any]], sweep_dir: Path, baseline: str | None) -> str | None:
    """The baseline to compare against (``None`` for a one-decoder sweep); one clear error when there is nothing to
    compare or the baseline is not in the sweep."""
    if not rows:
        raise DataError(f"{sweep_dir} holds no runs (folders with .hydra/config.yaml); pass a multirun folder")
    finished = [row for row in rows if row["status"] == "ok"]
    if not finished:
        raise DataError(
            f"no run in {sweep_dir} finished ({len(rows)} runs, none wrote metrics.json); "
            "see error.txt or the log in each run folder"
        )
    decoders = list(by_decoder(finished))
    if len(decoders) == 1 or baseline is None:  # one decoder, or a search that compares none (compare.baseline=null)
        return None
    if baseline not in decoders:
        raise ConfigError(
            f"compare.baseline={baseline} is not among the finished decoders of {sweep_dir} ({', '.join(decoders)}); "
            "set compare.baseline (or --baseline) to one of them"
        )
    return baseline


def build_comparison(
    sweep_dir: Path, baseline: str | None = "transpose", samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    rows = [read_run(run) for run in run_folders(sweep_dir)]
    comparison = Comparison(rows, summarise(rows), check_sweep(rows, sweep_dir, baseline))
    if comparison.baseline is not None:
        paired_intervals(comparison, samples, confidence, seed)
    for decoder, runs in by_decoder(rows).items():
        per_epoch: dict[int, list[float]] = defaultdict(list)
        for run in runs:
            if run["status"] == "ok":
                for epoch, value in val_curve(Path(run["run_dir"])).items():
                    per_epoch[epoch].append(value)
        comparison.curves[decoder] = {epoch: statistics.fmean(values) for epoch, values in sorted(per_epoch.items())}
    return comparison
