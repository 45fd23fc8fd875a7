"""A comparison of upsamplers from a sweep's runs: per decoder the mean ± standard deviation over seeds of every
catalogue metric and cost, and against a baseline decoder the paired bootstrap interval of each difference — within
each group of runs when the sweep varies more than the decoder and the seed (:func:`upseg.analysis.sweep.group_runs`:
an architecture, e.g. ``model=fpn``), with the interactions between groups.

- mean ± sample standard deviation over seeds of the catalogue's scalar metrics (:func:`upseg.metrics.catalogue.
  metric_columns`), for the **final** weights (the headline) and, for the headline metrics, the
  **best-by-validation** checkpoint;
- against a baseline decoder, the difference in mIoU and boundary IoU (and the class-1 Dice on two-class data) with
  a bootstrap confidence interval that resamples test images (paired: the same images for both decoders) and seeds
  (:mod:`upseg.analysis.bootstrap`), from the runs' ``per_image*.csv``; a finished run without them (an older run) is
  listed and left out of the intervals;
- cost: the catalogue's cost columns (parameters, GFLOPs of one forward pass, training images/s, inference ms per
  image, peak memory, training seconds);
- across groups, the **interaction** of each decoder with each pair of groups ``(a, b)``, ``a`` the earlier:
  ``Δ(decoder − baseline | b) − Δ(decoder − baseline | a)``, how much the decoder's gain changes with the
  architecture, with its paired bootstrap interval (every group's runs drawn on the same test images and seeds).
  Groups tested on different images get no interactions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from upseg.analysis.bootstrap import (
    DecoderCounts,
    Interval,
    Score,
    interaction,
    percentile_interval,
    pooled_miou,
    pooled_positive_dice,
    replicate_cells,
)
from upseg.analysis.sweep import group_runs, per_image_counts, read_run, run_folders, val_curve
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


Cell = tuple[str, str]  # (group, decoder)


@dataclass
class Comparison:
    """The comparison of the decoders of one group (the whole sweep when only the decoder and the seed vary)."""

    rows: list[dict[str, Any]]  # one per run
    table: list[dict[str, Any]]  # one per decoder
    baseline: str | None
    differences: dict[str, dict[str, Interval]] = field(default_factory=dict)  # label → decoder → interval
    intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)  # label → decoder → own interval
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # decoder → epoch → mean val mIoU
    group: str = ""  # e.g. "model=fpn"; empty when the sweep varies only the decoder and the seed


@dataclass
class SweepComparison:
    """A sweep's comparison: one :class:`Comparison` per group, and the interactions between groups. A sweep of one
    group reads as that group's comparison (``table``, ``differences``, ``intervals``, ``curves``)."""

    rows: list[dict[str, Any]]  # one per run, each with its "group"
    keys: list[str]  # the swept keys that tell the groups apart
    groups: dict[str, Comparison]  # group → its comparison, in the order the runs first show them
    baseline: str | None
    # label → (group a, group b) → decoder → interval of Δ(decoder − baseline | b) − Δ(decoder − baseline | a)
    interactions: dict[str, dict[tuple[str, str], dict[str, Interval]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be computed, and why

    def _one(self) -> Comparison:
        if len(self.groups) != 1:
            raise ValueError(f"this sweep has {len(self.groups)} groups ({', '.join(self.keys)}): use .groups[group]")
        return next(iter(self.groups.values()))

    @property
    def table(self) -> list[dict[str, Any]]:
        return [entry for comparison in self.groups.values() for entry in comparison.table]

    @property
    def differences(self) -> dict[str, dict[str, Interval]]:
        return self._one().differences

    @property
    def intervals(self) -> dict[str, dict[str, Interval]]:
        return self._one().intervals

    @property
    def curves(self) -> dict[str, dict[int, float]]:
        return self._one().curves


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def by_decoder(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by decoder, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row["decoder"])].append(row)
    return dict(groups)


def by_group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by their ``group``, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row.get("group") or "")].append(row)
    return dict(groups)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per decoder over its finished runs: (mean, std) of every catalogue metric and cost column."""
    table = []
    for decoder, runs in by_decoder(rows).items():
        ok = [run for run in runs if run["status"] == "ok"]
        entry: dict[str, Any] = {"decoder": decoder, "runs": len(ok), "failed": len(runs) - len(ok)}
        entry["group"] = str(runs[0].get("group") or "")
        for key in [column.key for column in metric_columns()] + [column.key for column in COST_COLUMNS]:
            values = [float(run[key]) for run in ok if run.get(key) is not None]
            entry[key] = mean_std(values) if values else None
        entry["cost_input"] = next((run["cost_input"] for run in ok if run.get("cost_input")), None)
        table.append(entry)
    return table


def describe(cell: Any) -> str:
    group, decoder = cell if isinstance(cell, tuple) else ("", cell)
    return f"decoder {decoder}" + (f" ({group})" if group else "")


def same_images(counts: dict[Any, list[tuple[Any, PerImageCounts]]]) -> bool:
    """Whether every run of every cell was tested on the same images."""
    sets = {tuple(sorted(run.index.tolist())) for runs in counts.values() for _, run in runs}
    return len(sets) <= 1


def aligned(
    counts: dict[Any, list[tuple[Any, PerImageCounts]]], prefix: str, score: Score = pooled_miou
) -> dict[Any, DecoderCounts]:
    """Counts as :class:`DecoderCounts`, images ordered by index; every run must hold the same test images."""
    first = next(iter(counts))
    reference = sorted(counts[first][0][1].index.tolist())
    for cell, runs in counts.items():
        for _, run in runs:
            if sorted(run.index.tolist()) != reference:
                raise DataError(
                    f"the runs of {describe(cell)} and {describe(first)} were tested on different images "
                    f"({len(run.index)} and {len(reference)}); compare only runs on the same test set"
                )
    out = {}
    for cell, runs in counts.items():
        orders = [run.index.argsort() for _, run in runs]
        seeds = [seed for seed, _ in runs]
        out[cell] = DecoderCounts(
            [run.counts[f"{prefix}intersection"][order] for (_, run), order in zip(runs, orders, strict=True)],
            [run.counts[f"{prefix}union"][order] for (_, run), order in zip(runs, orders, strict=True)],
            seeds if all(isinstance(seed, int) for seed in seeds) else None,
            score,
        )
    return out


def cell_of(row: dict[str, Any]) -> Cell:
    return str(row.get("group") or ""), str(row["decoder"])


def replicated(
    counts: dict[Cell, list[tuple[Any, PerImageCounts]]], prefix: str, score: Score, samples: int, seed: int
) -> tuple[dict[Cell, float], dict[Cell, np.ndarray], bool]:
    """Estimates and bootstrap replicates of every cell, and whether all cells share their draws (all groups tested
    on the same images); otherwise each group is drawn on its own."""
    if same_images(counts):
        return *replicate_cells(aligned(counts, prefix, score), samples, seed), True
    estimates: dict[Cell, float] = {}
    replicates: dict[Cell, np.ndarray] = {}
    for group in dict.fromkeys(group for group, _ in counts):
        own = {cell: runs for cell, runs in counts.items() if cell[0] == group}
        group_estimates, group_replicates = replicate_cells(aligned(own, prefix, score), samples, seed)
        estimates.update(group_estimates)
        replicates.update(group_replicates)
    return estimates, replicates, False


def paired_intervals(sweep: SweepComparison, samples: int, confidence: float, seed: int) -> None:
    """Fill every group's ``differences`` and ``intervals``, and the sweep's ``interactions``, from the runs'
    per-image files."""
    files = {which: per_image_counts(sweep.rows, which, cell_of) for which in PER_IMAGE_FILES}  # each read once
    baseline = sweep.baseline
    for which, prefix, label, score, needs_classes in DIFFERENCES:
        counts = files[which]
        with_baseline = [group for group in sweep.groups if (group, baseline) in counts]
        if not with_baseline:
            continue
        classes = counts[(with_baseline[0], baseline)][0][1].counts[f"{prefix}intersection"].shape[1]
        if needs_classes is not None and classes != needs_classes:
            continue
        estimates, replicates, joint = replicated(counts, prefix, score, samples, seed)
        for group in with_baseline:
            comparison, base = sweep.groups[group], (group, baseline)
            cells = [cell for cell in estimates if cell[0] == group]
            comparison.intervals[label] = {
                decoder: percentile_interval(estimates[cell], replicates[cell], confidence)
                for cell in cells
                for decoder in [cell[1]]
            }
            comparison.differences[label] = {
                cell[1]: percentile_interval(
                    estimates[cell] - estimates[base], replicates[cell] - replicates[base], confidence
                )
                for cell in cells
            }
        if not joint:
            note = "the groups were tested on different images, so their decoders' gains are not compared"
            sweep.notes += [] if note in sweep.notes else [note]
            continue
        for index, first in enumerate(with_baseline):
            for second in with_baseline[index + 1 :]:
                decoders = [d for g, d in estimates if g == first and d != baseline and (second, d) in estimates]
                sweep.interactions.setdefault(label, {})[(first, second)] = {
                    decoder: interaction(
                        estimates,
                        replicates,
                        ((first, decoder), (second, decoder)),
                        ((first, baseline), (second, baseline)),
                        confidence,
                    )
                    for decoder in decoders
                }


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


def group_comparison(group: str, rows: list[dict[str, Any]], baseline: str | None) -> Comparison:
    """One group's runs summarised, with its mean validation curves; intervals come later."""
    finished = {str(row["decoder"]) for row in rows if row["status"] == "ok"}
    comparison = Comparison(rows, summarise(rows), baseline if baseline in finished else None, group=group)
    for decoder, runs in by_decoder(rows).items():
        per_epoch: dict[int, list[float]] = defaultdict(list)
        for run in runs:
            if run["status"] == "ok":
                for epoch, value in val_curve(Path(run["run_dir"])).items():
                    per_epoch[epoch].append(value)
        comparison.curves[decoder] = {epoch: statistics.fmean(values) for epoch, values in sorted(per_epoch.items())}
    return comparison


def build_comparison(
    sweep_dir: Path, baseline: str | None = "transpose", samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> SweepComparison:
    rows = [read_run(run) for run in run_folders(sweep_dir)]
    # A search (no baseline) varies everything between trials: it is listed as one group.
    keys = group_runs(rows, by_architecture=baseline is not None)
    baseline = check_sweep(rows, sweep_dir, baseline)
    groups = {group: group_comparison(group, runs, baseline) for group, runs in by_group(rows).items()}
    sweep = SweepComparison(rows, keys, groups, baseline)
    missing = [group for group, comparison in groups.items() if comparison.baseline is None]
    if baseline is not None and missing:
        sweep.notes.append(f"no finished {baseline} run in {'; '.join(missing)}: no intervals there")
    if baseline is not None:
        paired_intervals(sweep, samples, confidence, seed)
    return sweep
