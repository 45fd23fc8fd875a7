"""Gather a sweep's runs into a comparison of upsamplers: ``comparison.csv`` (one row per run), ``comparison.md``,
``comparison_summary.csv`` (one row per decoder) and ``comparison.png``.

A sweep folder holds one folder per run (Hydra's ``<sweep>/<job number>/``). A run that wrote ``metrics.json``
finished; one that did not is listed as failed, with its decoder and seed read from ``.hydra/config.yaml`` and its
error from ``error.txt`` when the run left one. Per decoder the comparison gives:

- mean ± sample standard deviation over seeds of test mIoU and boundary IoU, for the **final** weights (the
  headline) and for the **best-by-validation** checkpoint;
- against a baseline decoder, the difference in mIoU and boundary IoU with a bootstrap confidence interval that
  resamples test images (paired: the same images for both decoders) and seeds (:mod:`upseg.bootstrap`), from the
  runs' ``per_image*.csv``; a finished run without them (an older run) is listed and left out of the intervals;
- cost: parameters, GFLOPs of one forward pass, training images/s, inference ms per image, peak memory.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from upseg.bootstrap import DecoderCounts, Interval, Score, compare_decoders, pooled_miou, pooled_positive_dice
from upseg.errors import ConfigError, DataError, UpsegError
from upseg.results import PER_IMAGE_FILES, PerImageCounts, read_per_image

log = logging.getLogger(__name__)

RUN_COLUMNS = [
    "decoder",
    "seed",
    "model",
    "status",
    "test/mIoU",
    "test/bIoU",
    "best/test/mIoU",
    "best/test/bIoU",
    "val/mIoU",
    "test/acc",
    "test/mDice",
    "test/binary/Dice",
    "test/binary/sensitivity",
    "test/binary/specificity",
    "test/binary/AUC",
    "test/checkerboard",
    "parameters",
    "gflops",
    "cost_input",
    "train_seconds",
    "train_images_per_second",
    "inference_ms_per_image",
    "peak_memory_mb",
    "epochs",
    "per_image",
    "run_dir",
    "error",
]
# (metrics.json key, label, digits): mean ± std over seeds
SPREAD = [
    ("test/mIoU", "mIoU final", 4),
    ("test/bIoU", "bIoU final", 4),
    ("best/test/mIoU", "mIoU best", 4),
    ("best/test/bIoU", "bIoU best", 4),
    ("val/mIoU", "val mIoU best", 4),
    ("test/mDice", "mDice final", 4),
    ("test/binary/Dice", "class-1 Dice final", 4),
    ("test/binary/AUC", "class-1 AUC final", 4),
    ("test/checkerboard", "checkerboard", 4),
]
# (metrics.json key, label, digits): mean over seeds
COST = [
    ("parameters", "parameters", 0),
    ("gflops", "GFLOPs", 3),
    ("train_images_per_second", "train images/s", 1),
    ("inference_ms_per_image", "inference ms/image", 2),
    ("peak_memory_mb", "peak MB", 0),
    ("train_seconds", "train s", 1),
]
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


def run_folders(sweep_dir: Path) -> list[Path]:
    """Folders below ``sweep_dir`` that are runs (they hold Hydra's ``.hydra/config.yaml``), in job order."""
    runs = [path.parent.parent for path in sweep_dir.glob("**/.hydra/config.yaml")]
    return sorted(
        set(runs), key=lambda p: [int(part) if part.isdigit() else part for part in p.relative_to(sweep_dir).parts]
    )


def read_run(run_dir: Path) -> dict[str, Any]:
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    row: dict[str, Any] = {
        "decoder": OmegaConf.select(config, "decoder.name"),
        "seed": OmegaConf.select(config, "seed"),
        "model": OmegaConf.select(config, "model.network"),
        "run_dir": str(run_dir),
    }
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update({key: metrics.get(key) for key in RUN_COLUMNS if key in metrics})
        row["status"] = "ok"
        row["per_image"] = " ".join(name for name, file in PER_IMAGE_FILES.items() if (run_dir / file).is_file())
    else:
        error_file = run_dir / "error.txt"
        row["status"] = "failed"
        row["error"] = error_file.read_text().strip().splitlines()[-1] if error_file.is_file() else "no metrics.json"
    return row


def val_curve(run_dir: Path) -> dict[int, float]:
    """``{epoch: val/mIoU}`` from the run's CSV log (empty when there is none)."""
    curve: dict[int, float] = {}
    for path in run_dir.glob("csv/**/metrics.csv"):
        with open(path) as f:
            for record in csv.DictReader(f):
                if record.get("val/mIoU"):
                    curve[int(record["epoch"])] = float(record["val/mIoU"])
    return curve


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def by_decoder(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by decoder, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row["decoder"])].append(row)
    return dict(groups)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per decoder over its finished runs: (mean, std) for :data:`SPREAD` and :data:`COST` keys."""
    table = []
    for decoder, runs in by_decoder(rows).items():
        ok = [run for run in runs if run["status"] == "ok"]
        entry: dict[str, Any] = {"decoder": decoder, "runs": len(ok), "failed": len(runs) - len(ok)}
        for key, _, _ in SPREAD + COST:
            values = [float(run[key]) for run in ok if run.get(key) is not None]
            entry[key] = mean_std(values) if values else None
        entry["cost_input"] = next((run["cost_input"] for run in ok if run.get("cost_input")), None)
        table.append(entry)
    return table


def per_image_counts(rows: list[dict[str, Any]], which: str) -> dict[str, list[tuple[Any, PerImageCounts]]]:
    """Per decoder, ``(seed, counts)`` of the ``which`` (final or best) per-image files of its finished runs."""
    counts: dict[str, list[tuple[Any, PerImageCounts]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and which in (row.get("per_image") or "").split():
            file = Path(row["run_dir"]) / PER_IMAGE_FILES[which]
            counts[str(row["decoder"])].append((row["seed"], read_per_image(file)))
    return dict(counts)


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


def cell(value: tuple[float, float] | None, digits: int, spread: bool) -> str:
    if value is None:
        return "–"
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}" if spread else f"{value[0]:,.{digits}f}"


def interval_cell(interval: Interval | None) -> str:
    if interval is None:
        return "–"
    mark = " **≠0**" if interval.excludes_zero else ""
    return f"{interval.estimate:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]{mark}"


def markdown(comparison: Comparison, sweep_dir: Path, confidence: float, samples: int) -> str:
    table, rows = comparison.table, comparison.rows
    spread = [column for column in SPREAD if any(entry[column[0]] is not None for entry in table)]
    header = ["decoder", "runs"] + [label for _, label, _ in spread]
    lines = [f"# Upsampler comparison: {sweep_dir}", "", "## Accuracy", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [entry["decoder"], str(entry["runs"])] + [cell(entry[k], d, True) for k, _, d in spread]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± sample standard deviation over seeds. **Final** (the headline): the weights at the end of training; "
        "**best**: the checkpoint with the best validation mIoU. bIoU: boundary IoU (Cheng et al. 2021). Columns "
        "no run reports are left out (class-1 Dice and AUC: two-class data only). "
        "Checkerboard: correlation ratio of the final test logits and the sub-pixel phase (0 = phase-uniform).",
    ]
    lines += differences_section(comparison, confidence, samples)
    input_size = next((entry["cost_input"] for entry in table if entry.get("cost_input")), None)
    header = ["decoder"] + [label for _, label, _ in COST]
    lines += ["", "## Cost", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        lines.append("| " + " | ".join([entry["decoder"]] + [cell(entry[k], d, False) for k, _, d in COST]) + " |")
    lines += [
        "",
        f"Means over seeds. GFLOPs: one forward pass of one {input_size or '?'} test image "
        "(torch.utils.flop_counter, with bilinear sampling counted; see upseg.cost). Inference: forward pass on a "
        "test batch, no gradients. Training images/s: training batches only. Peak MB: on a CPU the main process's peak "
        "RSS from the start of the run's fit (reset per run on Linux; elsewhere the process's lifetime peak, which "
        "grows over a sweep), on a GPU the peak allocated.",
    ]
    without = [row for row in rows if row["status"] == "ok" and "final" not in (row.get("per_image") or "").split()]
    lines += ["", f"## Finished runs without per-image scores ({len(without)})", ""]
    lines += [
        f"- `{row['run_dir']}` decoder={row['decoder']} seed={row['seed']}: left out of the intervals"
        for row in without
    ] or ["none"]
    failed = [row for row in rows if row["status"] != "ok"]
    lines += ["", f"## Failed runs ({len(failed)})", ""]
    lines += [
        f"- `{row['run_dir']}` decoder={row['decoder']} seed={row['seed']}: {row['error']}" for row in failed
    ] or ["none"]
    return "\n".join(lines) + "\n"


def differences_section(comparison: Comparison, confidence: float, samples: int) -> list[str]:
    title = comparison.baseline or "none (one decoder, compare.baseline=null, or no run folders)"
    lines = ["", f"## Against the baseline: {title}", ""]
    if comparison.baseline is None:
        return lines[:-1]
    if not comparison.differences:
        return lines + ["The baseline's runs have no per-image scores, so no interval can be computed."]
    labels = [label for _, _, label, _, _ in DIFFERENCES if label in comparison.differences]
    lines += ["| decoder | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
    for entry in comparison.table:
        decoder = entry["decoder"]
        if decoder == comparison.baseline:
            continue
        cells = [interval_cell(comparison.differences[label].get(decoder)) for label in labels]
        lines.append(f"| {decoder} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Difference of the mean over seeds (decoder − {comparison.baseline}) with a {confidence:.0%} paired bootstrap "
        f"interval ({samples:,} resamples of the test images — the same images for both decoders — and of the "
        "seeds — the same seeds for both when both ran the same ones, as runs of one seed share data order and "
        "initial encoder weights). **≠0**: the interval excludes 0, the difference is unlikely to be noise of test "
        "images and seeds; without it, the difference is within that noise.",
    ]
    return lines


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def summary_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One flat row per decoder: means, standard deviations, intervals, differences."""
    out = []
    for entry in comparison.table:
        row: dict[str, Any] = {"decoder": entry["decoder"], "runs": entry["runs"], "failed": entry["failed"]}
        for key, _, _ in SPREAD + COST:
            if entry[key] is not None:
                row[f"{key} mean"], row[f"{key} std"] = entry[key]
        for label, by_name in comparison.differences.items():
            if entry["decoder"] in by_name:
                interval = by_name[entry["decoder"]]
                row.update(
                    {f"{label}": interval.estimate, f"{label} low": interval.low, f"{label} high": interval.high}
                )
        for label, by_name in comparison.intervals.items():
            if entry["decoder"] in by_name:
                interval = by_name[entry["decoder"]]
                name = label.removeprefix("Δ")
                row.update({f"{name} low": interval.low, f"{name} high": interval.high})
        out.append(row)
    return out


def compare(
    sweep_dir: str | Path,
    baseline: str | None = "transpose",
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Write ``comparison.{csv,md,png}`` and ``comparison_summary.csv`` into ``sweep_dir``."""
    from upseg.plots import plot_comparison

    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, baseline, samples, confidence, seed)
    write_csv(sweep_dir / "comparison.csv", comparison.rows, RUN_COLUMNS)
    summary = summary_rows(comparison)
    columns = list(dict.fromkeys(key for row in summary for key in row))
    write_csv(sweep_dir / "comparison_summary.csv", summary, columns)
    (sweep_dir / "comparison.md").write_text(markdown(comparison, sweep_dir, confidence, samples))
    plot_comparison(comparison, sweep_dir / "comparison.png")
    return comparison


class ComparisonCallback(Callback):
    """Hydra callback: at the end of a multirun, compare its runs (the ``compare`` config); exit 1 if a run failed,
    2 if there is nothing to compare."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        options = OmegaConf.to_container(config.get("compare") or {}, resolve=True)
        try:
            comparison = compare(sweep_dir, **options)
        except UpsegError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)
        print((sweep_dir / "comparison.md").read_text())
        failed = [row for row in comparison.rows if row["status"] != "ok"]
        if failed:
            print(
                f"error: {len(failed)} of {len(comparison.rows)} runs failed; see {sweep_dir / 'comparison.md'}",
                file=sys.stderr,
            )
            sys.exit(1)
