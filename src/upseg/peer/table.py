"""The side-by-side table: per dataset and recipe, the mean ± standard deviation over seeds of the test mIoU (and of
the class-1 Dice on two-class data), and the paired bootstrap interval of ``recipe − peer``
(:func:`upseg.analysis.bootstrap.compare_decoders`: the same draw of test images for every recipe, and of seeds when
all ran the same ones). A difference whose interval holds 0 is within noise.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from upseg.analysis.bootstrap import DecoderCounts, compare_decoders, pooled_miou, pooled_positive_dice
from upseg.errors import UpsegError
from upseg.metrics.results import read_per_image
from upseg.peer.cells import PEER, PER_IMAGE, Cell

TABLE_MD, TABLE_CSV = "table.md", "table.csv"


def recipe_counts(out: Path, dataset: str, recipe: str, seeds: Sequence[int]) -> tuple[list[int], list[Any]]:
    """The seeds whose cell is done and their per-image counts."""
    done = [seed for seed in seeds if Cell(dataset, recipe, seed).done(out)]
    return done, [read_per_image(Cell(dataset, recipe, seed).folder(out) / PER_IMAGE) for seed in done]


def dataset_rows(
    out: Path, dataset: str, recipes: Sequence[str], seeds: Sequence[int], samples: int, confidence: float
) -> list[dict[str, Any]]:
    counts, order = {}, None
    for recipe in recipes:
        done, runs = recipe_counts(out, dataset, recipe, seeds)
        if not runs:
            continue
        for run in runs:
            if order is None:
                order = run.index
            elif not np.array_equal(order, run.index):
                raise UpsegError(f"{dataset}: {recipe} was tested on other images than the others; rerun its cells")
        counts[recipe] = (done, runs)
    if PEER not in counts:
        return []
    rows = []
    scores = {"mIoU": pooled_miou}
    if len(counts[PEER][1][0].class_names) == 2:
        scores["Dice"] = pooled_positive_dice  # class 1: vessel, cell
    for metric, score in scores.items():
        decoders = {
            recipe: DecoderCounts(
                [run.counts["intersection"] for run in runs], [run.counts["union"] for run in runs], done, score
            )
            for recipe, (done, runs) in counts.items()
        }
        own, difference = compare_decoders(decoders, PEER, samples, confidence)
        for recipe, decoder in decoders.items():
            values = decoder.scores()
            rows.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    "recipe": recipe,
                    "seeds": len(values),
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "low": own[recipe].low,
                    "high": own[recipe].high,
                    "minus_peer": difference[recipe].estimate,
                    "minus_peer_low": difference[recipe].low,
                    "minus_peer_high": difference[recipe].high,
                    "beyond_noise": recipe != PEER and difference[recipe].excludes_zero,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], confidence: float) -> str:
    lines = [
        f"| dataset | metric | recipe | seeds | mean ± std | − {PEER} [{confidence:.0%} interval] | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        std = "" if np.isnan(row["std"]) else f" ± {row['std']:.4f}"
        if row["recipe"] == PEER:
            difference, verdict = "(the peer)", ""
        else:
            difference = f"{row['minus_peer']:+.4f} [{row['minus_peer_low']:+.4f}, {row['minus_peer_high']:+.4f}]"
            verdict = "beyond noise" if row["beyond_noise"] else "within noise"
        lines.append(
            f"| {row['dataset']} | {row['metric']} | {row['recipe']} | {row['seeds']} | {row['mean']:.4f}{std} | "
            f"{difference} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def write_table(
    out: Path,
    datasets: Sequence[str],
    recipes: Sequence[str],
    seeds: Sequence[int],
    samples: int = 2000,
    confidence: float = 0.95,
) -> str:
    """``table.md`` and ``table.csv`` in ``out`` from the finished cells; returns the markdown."""
    rows = [row for dataset in datasets for row in dataset_rows(out, dataset, recipes, seeds, samples, confidence)]
    text = markdown(rows, confidence)
    (out / TABLE_MD).write_text(text)
    with open(out / TABLE_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["dataset"])
        writer.writeheader()
        writer.writerows(rows)
    return text
