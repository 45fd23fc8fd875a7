"""The runs of a sweep folder, as the comparison reads them.

A sweep folder holds one folder per run (Hydra's ``<sweep>/<job number>/``, or any folder below it with
``.hydra/config.yaml``; folders whose name starts with a dot, such as the earlier attempts a resumed sweep keeps, are
not runs). A run that wrote ``metrics.json`` finished; one that did not is listed as failed, with its decoder and seed
read from ``.hydra/config.yaml`` and its error from ``error.txt`` when the run left one. A run's row holds the
catalogue's columns (:mod:`upseg.metrics.catalogue`) as ``metrics.json`` has them, and the overrides it was started
with (``.hydra/overrides.yaml``).

**Groups.** A sweep may vary more than the decoder and the seed (``model=unet,unet_noskip,fpn``). Every other key
whose value differs between runs tells architectures apart: :func:`group_runs` gives each run its ``group``, e.g.
``model=fpn`` (empty when only the decoder and the seed vary), and decoders are compared within a group. Decoder
options that vary (``decoder.options.up_kernel=3,5``) become part of the decoder's name instead, ``carafe
(options.up_kernel=3)``; ``resume`` never counts.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from upseg.metrics.catalogue import COST_COLUMNS, metric_columns
from upseg.metrics.results import PER_IMAGE_FILES, PerImageCounts, read_per_image
from upseg.models import decoder_label

NOT_ARCHITECTURE = ("seed", "resume")  # keys that never tell architectures apart


def run_columns() -> list[str]:
    """The columns of ``comparison.csv``: who the run is, its status, every catalogue metric and cost, where it is."""
    return [
        "decoder",
        "seed",
        "model",
        "group",
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
    runs = [run for run in runs if not any(part.startswith(".") for part in run.relative_to(sweep_dir).parts)]
    return sorted(
        set(runs), key=lambda p: [int(part) if part.isdigit() else part for part in p.relative_to(sweep_dir).parts]
    )


def read_overrides(run_dir: Path) -> dict[str, str]:
    """``{key: value}`` of the overrides a run was started with (``+``, ``++`` and ``~`` dropped); empty without the
    file."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    overrides = {}
    for line in OmegaConf.load(path):
        key, _, value = str(line).lstrip("+~").partition("=")
        overrides[key] = value
    return overrides


def read_run(run_dir: Path) -> dict[str, Any]:
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    decoder = OmegaConf.select(config, "decoder")
    row: dict[str, Any] = {
        "decoder": decoder_label(decoder) if decoder is not None else None,
        "seed": OmegaConf.select(config, "seed"),
        "model": OmegaConf.select(config, "model.net.name") or OmegaConf.select(config, "model.network"),
        "group": "",
        "overrides": read_overrides(run_dir),
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


def is_decoder_key(key: str) -> bool:
    return key == "decoder" or key.startswith("decoder.")


def group_runs(rows: list[dict[str, Any]], by_architecture: bool = True) -> list[str]:
    """Give every row its ``group`` (unless not ``by_architecture``: a search, whose trials all differ) and, where
    decoder options vary, its decoder's full name (see the module docstring); returns the keys that tell the groups
    apart, in the order they were first seen."""
    keys = dict.fromkeys(key for row in rows for key in row["overrides"])
    swept = [key for key in keys if len({row["overrides"].get(key) for row in rows}) > 1]
    architecture = [key for key in swept if key not in NOT_ARCHITECTURE and not is_decoder_key(key)]
    architecture = architecture if by_architecture else []
    variants = [key for key in swept if is_decoder_key(key) and key not in ("decoder", "decoder.stages")]
    for row in rows:
        overrides = row["overrides"]
        row["group"] = ", ".join(f"{key}={overrides.get(key, '–')}" for key in architecture)
        options = [f"{key.removeprefix('decoder.')}={overrides[key]}" for key in variants if key in overrides]
        if options:
            row["decoder"] = f"{row['decoder']} ({', '.join(options)})"
    return architecture


def val_curve(run_dir: Path) -> dict[int, float]:
    """``{epoch: val/mIoU}`` from the run's CSV log (empty when there is none)."""
    curve: dict[int, float] = {}
    for path in run_dir.glob("csv/**/metrics.csv"):
        with open(path) as f:
            for record in csv.DictReader(f):
                if record.get("val/mIoU"):
                    curve[int(record["epoch"])] = float(record["val/mIoU"])
    return curve


def per_image_counts(
    rows: list[dict[str, Any]], which: str, key: Callable[[dict[str, Any]], Hashable] = lambda row: str(row["decoder"])
) -> dict[Hashable, list[tuple[Any, PerImageCounts]]]:
    """Per decoder (or per ``key`` of a row: ``(group, decoder)``), ``(seed, counts)`` of the ``which`` (final or
    best) per-image files of its finished runs."""
    counts: dict[Hashable, list[tuple[Any, PerImageCounts]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and which in (row.get("per_image") or "").split():
            file = Path(row["run_dir"]) / PER_IMAGE_FILES[which]
            counts[key(row)].append((row["seed"], read_per_image(file)))
    return dict(counts)
