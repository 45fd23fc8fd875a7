"""The result files of a run folder: ``metrics.json`` and the per-image scores ``per_image*.csv``.

A per-image file has one row per evaluated image: ``index`` (its position in the split), ``name`` (its image file,
empty for generated data), then for every class ``c`` the pixel counts ``intersection/c``, ``union/c`` (IoU) and
``boundary_intersection/c``, ``boundary_union/c`` (boundary IoU). Summing a column over any set of images and
dividing gives that set's pooled score, so per-image scores, subsets and bootstrap resamples need no model.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from upseg.metrics import COUNTS

PER_IMAGE_FILES = {"final": "per_image.csv", "best": "per_image_best.csv"}


@dataclass
class PerImageCounts:
    """Counts of one evaluation: ``counts[name]`` is ``images × classes`` for each name in :data:`COUNTS`."""

    index: np.ndarray
    names: list[str]
    class_names: list[str]
    counts: dict[str, np.ndarray]


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def write_per_image(
    path: Path, counts: dict[str, Tensor], class_names: Sequence[str], sample_name: Callable[[int], str]
) -> None:
    """``counts`` as :class:`~upseg.metrics.PerImageScores` computes them; ``sample_name(index)`` names an image."""
    header = ["index", "name"] + [f"{name}/{c}" for name in COUNTS for c in class_names]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        # torchmetrics squeezes a one-element result: the index of a single test image comes back 0-dimensional.
        for row, index in enumerate(counts["index"].reshape(-1).tolist()):
            values = [int(v) for name in COUNTS for v in counts[name][row].tolist()]
            writer.writerow([index, sample_name(index), *values])


def read_per_image(path: Path) -> PerImageCounts:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    prefix = f"{COUNTS[0]}/"
    class_names = [column.removeprefix(prefix) for column in header if column.startswith(prefix)]
    table = np.array([[int(v) for v in row[2:]] for row in rows], dtype=np.int64).reshape(len(rows), -1)
    blocks = table.reshape(len(rows), len(COUNTS), len(class_names))
    return PerImageCounts(
        index=np.array([int(row[0]) for row in rows], dtype=np.int64),
        names=[row[1] for row in rows],
        class_names=class_names,
        counts={name: blocks[:, i, :] for i, name in enumerate(COUNTS)},
    )
