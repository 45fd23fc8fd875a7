"""The runs of a sweep folder, as the comparison reads them.

A sweep folder holds one folder per run (Hydra's ``<sweep>/<job number>/``, or any folder below it with
``.hydra/config.yaml``). A run that wrote ``metrics.json`` finished; one that did not is listed as failed, with its
decoder and seed read from ``.hydra/config.yaml`` and its error from ``error.txt`` when the run left one. A run's row
holds the catalogue's columns (:mod:`upseg.metrics.catalogue`) as ``metrics.json`` has them.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from upseg.metrics.catalogue import COST_COLUMNS, metric_columns
from upseg.metrics.results import PER_IMAGE_FILES, PerImageCounts, read_per_image


def run_columns() -> list[str]:
    """The columns of ``comparison.csv``: who the run is, its status, every catalogue metric and cost, where it is."""
    return [
        "decoder",
        "seed",
        "model",
        "status",
        *(column.key for column in metric_columns()),
        *(column.key for column in COST_COLUMNS),
        "cost_input",
        "epochs",
        "per_image",
        "run_dir",
        "error",
    ]


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
        "model": OmegaConf.select(config, "model.net.name") or OmegaConf.select(config, "model.network"),
        "run_dir": str(run_dir),
    }
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update({key: metrics[key] for key in run_columns() if key in metrics})
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


def per_image_counts(rows: list[dict[str, Any]], which: str) -> dict[str, list[tuple[Any, PerImageCounts]]]:
    """Per decoder, ``(seed, counts)`` of the ``which`` (final or best) per-image files of its finished runs."""
    counts: dict[str, list[tuple[Any, PerImageCounts]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and which in (row.get("per_image") or "").split():
            file = Path(row["run_dir"]) / PER_IMAGE_FILES[which]
            counts[str(row["decoder"])].append((row["seed"], read_per_image(file)))
    return dict(counts)
