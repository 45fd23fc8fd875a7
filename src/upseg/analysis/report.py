"""The written forms of a comparison: ``comparison.md`` (accuracy, differences against the baseline — per group, with
the interactions between groups, when the sweep varies more than the decoder — cost, runs left out) and the rows of
``comparison.csv``, ``comparison_summary.csv`` and ``comparison_interactions.csv``, their columns from the metric
catalogue.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from upseg.analysis.bootstrap import Interval
from upseg.analysis.comparison import DIFFERENCES, Comparison, SweepComparison
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


def markdown(comparison: Comparison | SweepComparison, sweep_dir: Path, confidence: float, samples: int) -> str:
    """``comparison.md``: per group (one for a sweep of decoders and seeds) the accuracy and the differences against
    the baseline, then the interactions between groups, the cost, and the runs left out."""
    groups = comparison.groups if isinstance(comparison, SweepComparison) else {"": comparison}
    several = len(groups) > 1
    lines = [f"# Upsampler comparison: {sweep_dir}"]
    if several:
        lines += [
            "",
            f"The runs differ in {', '.join(f'`{key}`' for key in comparison.keys)} besides the decoder and the seed: "
            f"each group's decoders are compared with that group's {comparison.baseline} runs, and the interactions "
            "below say how much a decoder's gain changes from one group to another.",
        ]
    level = "###" if several else "##"
    for group, part in groups.items():
        lines += ["", f"## {group}"] if several else []
        lines += accuracy_section(part, level)
        if several and part.baseline is None:
            lines += [
                "",
                f"{level} Against the baseline",
                "",
                f"No finished {comparison.baseline} run here: no intervals.",
            ]
        else:
            lines += differences_section(part, confidence, samples, level)
    if several:
        lines += interactions_section(comparison, confidence, samples)
    table = [entry for part in groups.values() for entry in part.table]
    lines += cost_section(table, several)
    rows = comparison.rows
    where = (lambda row: f" ({row['group']})" if row.get("group") else "") if several else (lambda row: "")
    without = [row for row in rows if row["status"] == "ok" and "final" not in (row.get("per_image") or "").split()]
    lines += ["", f"## Finished runs without per-image scores ({len(without)})", ""]
    lines += [
        f"- `{row['run_dir']}` decoder={row['decoder']}{where(row)} seed={row['seed']}: left out of the intervals"
        for row in without
    ] or ["none"]
    failed = [row for row in rows if row["status"] != "ok"]
    lines += ["", f"## Failed runs ({len(failed)})", ""]
    lines += [
        f"- `{row['run_dir']}` decoder={row['decoder']}{where(row)} seed={row['seed']}: {row['error']}"
        for row in failed
    ] or ["none"]
    notes = comparison.notes if isinstance(comparison, SweepComparison) else []
    lines += ["", "## Notes", "", *(f"- {note}" for note in notes)] if notes else []
    return "\n".join(lines) + "\n"


def accuracy_section(comparison: Comparison, level: str) -> list[str]:
    table = comparison.table
    spread = [column for column in metric_columns() if any(entry[column.key] is not None for entry in table)]
    header = ["decoder", "runs"] + [column.label for column in spread]
    lines = ["", f"{level} Accuracy", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [entry["decoder"], str(entry["runs"])] + [cell(entry[c.key], c.digits, True) for c in spread]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [
        "",
        "Mean ± sample standard deviation over seeds. **Final** (the headline): the weights at the end of training; "
        "**best**: the checkpoint with the best validation mIoU. bIoU: boundary IoU (Cheng et al. 2021). Columns "
        "no run reports are left out (class-1 Dice and AUC: two-class data only). "
        "Checkerboard: correlation ratio of the final test logits and the sub-pixel phase (0 = phase-uniform).",
    ]


def cost_section(table: list[dict[str, Any]], with_group: bool) -> list[str]:
    input_size = next((entry["cost_input"] for entry in table if entry.get("cost_input")), None)
    header = ["group"] * with_group + ["decoder"] + [column.label for column in COST_COLUMNS]
    lines = ["", "## Cost", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [cell(entry[column.key], column.digits, False) for column in COST_COLUMNS]
        lines.append("| " + " | ".join([entry["group"]] * with_group + [entry["decoder"], *cells]) + " |")
    return lines + [
        "",
        f"Means over seeds. GFLOPs: one forward pass of one {input_size or '?'} test image "
        "(torch.utils.flop_counter, with bilinear sampling counted; see upseg.analysis.cost). Inference: forward pass "
        "on a test batch, no gradients. Training images/s: training batches only. Peak MB: on a CPU the main process's "
        "peak RSS from the start of the run's fit (reset per run on Linux; elsewhere the process's lifetime peak, "
        "which grows over a sweep; an allocator that keeps freed memory, such as jemalloc with dirty_decay_ms:-1, "
        "holds what earlier runs of the sweep used, so then it only grows too), on a GPU the peak allocated.",
    ]


def differences_section(comparison: Comparison, confidence: float, samples: int, level: str = "##") -> list[str]:
    title = comparison.baseline or "none (one decoder, compare.baseline=null, or no run folders)"
    lines = ["", f"{level} Against the baseline: {title}", ""]
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


def interactions_section(sweep: SweepComparison, confidence: float, samples: int) -> list[str]:
    lines = ["", "## Interactions: does a decoder's gain depend on the group?"]
    labels = [label for _, _, label, _, _ in DIFFERENCES if label in sweep.interactions]
    pairs = list(dict.fromkeys(pair for label in labels for pair in sweep.interactions[label]))
    if not pairs:
        return lines + ["", "None could be computed (see the notes)."]
    for first, second in pairs:
        lines += ["", f"### {second} against {first}", ""]
        lines += ["| decoder | " + " | ".join(f"Δ{label}" for label in labels) + " |", "|" + "---|" * (len(labels) + 1)]
        decoders = list(
            dict.fromkeys(d for label in labels for d in sweep.interactions[label].get((first, second), {}))
        )
        for decoder in decoders:
            cells = [interval_cell(sweep.interactions[label].get((first, second), {}).get(decoder)) for label in labels]
            lines.append(f"| {decoder} | " + " | ".join(cells) + " |")
    baseline = sweep.baseline
    lines += [
        "",
        f"ΔΔ: the decoder's difference to {baseline} in the second group minus that in the first, "
        f"Δ(decoder − {baseline} | second) − Δ(decoder − {baseline} | first), with a {confidence:.0%} paired bootstrap "
        f"interval ({samples:,} resamples, the same draw of test images and seeds for every group and decoder). "
        "**≠0**: the decoder's gain differs between the two groups beyond the noise of test images and seeds.",
    ]
    return lines


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def summary_rows(comparison: Comparison | SweepComparison) -> list[dict[str, Any]]:
    """One flat row per decoder (per group and decoder in a sweep of several groups): means, standard deviations,
    intervals, differences."""
    groups = comparison.groups if isinstance(comparison, SweepComparison) else {"": comparison}
    out = []
    for group, part in groups.items():
        for entry in part.table:
            row: dict[str, Any] = {"group": group} if len(groups) > 1 else {}
            row.update({"decoder": entry["decoder"], "runs": entry["runs"], "failed": entry["failed"]})
            for key in [column.key for column in _columns()]:
                if entry[key] is not None:
                    row[f"{key} mean"], row[f"{key} std"] = entry[key]
            for label, by_name in part.differences.items():
                if entry["decoder"] in by_name:
                    interval = by_name[entry["decoder"]]
                    row.update(
                        {f"{label}": interval.estimate, f"{label} low": interval.low, f"{label} high": interval.high}
                    )
            for label, by_name in part.intervals.items():
                if entry["decoder"] in by_name:
                    interval = by_name[entry["decoder"]]
                    name = label.removeprefix("Δ")
                    row.update({f"{name} low": interval.low, f"{name} high": interval.high})
            out.append(row)
    return out


def interaction_rows(sweep: SweepComparison) -> list[dict[str, Any]]:
    """One row per interaction: the score, the two groups, the decoder, the estimate and its interval."""
    return [
        {
            "score": label,
            "first": first,
            "second": second,
            "decoder": decoder,
            "estimate": interval.estimate,
            "low": interval.low,
            "high": interval.high,
            "excludes_zero": interval.excludes_zero,
        }
        for label, pairs in sweep.interactions.items()
        for (first, second), by_decoder in pairs.items()
        for decoder, interval in by_decoder.items()
    ]


def _columns() -> list[Column]:
    return [*metric_columns(), *COST_COLUMNS]
