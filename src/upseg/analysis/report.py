"""The written forms of a comparison: ``comparison.md`` (accuracy, differences against the baseline, cost, runs
left out) and the rows of ``comparison.csv`` and ``comparison_summary.csv``, their columns from the metric catalogue.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from upseg.analysis.bootstrap import Interval
from upseg.analysis.comparison import DIFFERENCES, Comparison
from upseg.metrics.catalogue import COST_COLUMNS, Column, metric_columns


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
    spread = [column for column in metric_columns() if any(entry[column.key] is not None for entry in table)]
    header = ["decoder", "runs"] + [column.label for column in spread]
    lines = [f"# Upsampler comparison: {sweep_dir}", "", "## Accuracy", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [entry["decoder"], str(entry["runs"])] + [cell(entry[c.key], c.digits, True) for c in spread]
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
    header = ["decoder"] + [column.label for column in COST_COLUMNS]
    lines += ["", "## Cost", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [cell(entry[column.key], column.digits, False) for column in COST_COLUMNS]
        lines.append("| " + " | ".join([entry["decoder"], *cells]) + " |")
    lines += [
        "",
        f"Means over seeds. GFLOPs: one forward pass of one {input_size or '?'} test image "
        "(torch.utils.flop_counter, with bilinear sampling counted; see upseg.analysis.cost). Inference: forward pass "
        "on a test batch, no gradients. Training images/s: training batches only. Peak MB: on a CPU the main process's "
        "peak RSS from the start of the run's fit (reset per run on Linux; elsewhere the process's lifetime peak, "
        "which grows over a sweep), on a GPU the peak allocated.",
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
        for key in [column.key for column in _columns()]:
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


def _columns() -> list[Column]:
    return [*metric_columns(), *COST_COLUMNS]
