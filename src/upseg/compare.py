"""Gather a sweep's runs into a comparison of upsamplers: ``comparison.csv``, ``comparison.md``, ``comparison.png``.

A sweep folder holds one folder per run (Hydra's ``<sweep>/<job number>/``). A run that wrote ``metrics.json``
succeeded; one that did not is listed as failed, with its decoder and seed read from ``.hydra/config.yaml`` and its
error from ``error.txt`` when the run left one. Per decoder, the markdown table gives mean ± sample standard deviation
over the successful runs (seeds) of test and val mIoU, and the mean of parameters, training time, training throughput,
peak memory and the checkerboard score of the test logits.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

RUN_COLUMNS = [
    "decoder",
    "seed",
    "model",
    "status",
    "test/mIoU",
    "val/mIoU",
    "test/acc",
    "test/checkerboard",
    "parameters",
    "train_seconds",
    "train_images_per_second",
    "peak_memory_mb",
    "epochs",
    "run_dir",
    "error",
]
SPREAD = [("test/mIoU", "test mIoU", 4), ("val/mIoU", "val mIoU", 4)]
MEANS = [
    ("parameters", "parameters", 0),
    ("train_seconds", "train s", 1),
    ("train_images_per_second", "images/s", 1),
    ("peak_memory_mb", "peak MB", 0),
    ("test/checkerboard", "checkerboard", 4),
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
        "model": OmegaConf.select(config, "model.network"),
        "run_dir": str(run_dir),
    }
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update({key: metrics.get(key) for key in RUN_COLUMNS if key in metrics})
        row["status"] = "ok"
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


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per decoder (in order of first appearance) over its successful runs."""
    by_decoder: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_decoder[str(row["decoder"])].append(row)
    table = []
    for decoder, runs in by_decoder.items():
        ok = [run for run in runs if run["status"] == "ok"]
        entry: dict[str, Any] = {"decoder": decoder, "runs": len(ok), "failed": len(runs) - len(ok)}
        for key, _, _ in SPREAD + MEANS:
            values = [float(run[key]) for run in ok if run.get(key) is not None]
            entry[key] = mean_std(values) if values else None
        table.append(entry)
    return table


def markdown(table: list[dict[str, Any]], rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    header = ["decoder", "runs"] + [label for _, label, _ in SPREAD + MEANS]
    lines = [f"# Upsampler comparison: {sweep_dir}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        cells = [entry["decoder"], str(entry["runs"])]
        for key, _, digits in SPREAD:
            cells.append("–" if entry[key] is None else f"{entry[key][0]:.{digits}f} ± {entry[key][1]:.{digits}f}")
        for key, _, digits in MEANS:
            cells.append("–" if entry[key] is None else f"{entry[key][0]:,.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± sample standard deviation over seeds; other columns are means. Checkerboard: correlation "
        "ratio of test logits and sub-pixel phase (0 = phase-uniform, 1 = pure checkerboard).",
    ]
    failed = [row for row in rows if row["status"] != "ok"]
    lines += ["", f"## Failed runs ({len(failed)})", ""]
    lines += [f"- `{row['run_dir']}` decoder={row['decoder']} seed={row['seed']}: {row['error']}" for row in failed]
    if not failed:
        lines.append("none")
    return "\n".join(lines) + "\n"


def plot(table: list[dict[str, Any]], rows: list[dict[str, Any]], path: Path) -> None:
    from upseg.plots import plt

    fig, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [entry["decoder"] for entry in table]
    for offset, (key, label, _) in zip((-0.2, 0.2), SPREAD, strict=True):
        means = [entry[key][0] if entry[key] else 0.0 for entry in table]
        stds = [entry[key][1] if entry[key] else 0.0 for entry in table]
        bars.bar([i + offset for i in range(len(names))], means, width=0.4, yerr=stds, capsize=4, label=label)
    bars.set_xticks(range(len(names)), names)
    bars.set_ylabel("mIoU")
    ok_values = [entry[k][0] - 2 * entry[k][1] for entry in table for k, _, _ in SPREAD if entry[k]]
    bars.set_ylim(max(0.0, min(ok_values, default=0.0) - 0.02), 1.0)
    bars.legend()
    bars.set_title("mIoU per decoder (mean ± std over seeds)")
    for name in names:
        per_epoch: dict[int, list[float]] = defaultdict(list)
        for row in rows:
            if row["decoder"] == name and row["status"] == "ok":
                for epoch, value in val_curve(Path(row["run_dir"])).items():
                    per_epoch[epoch].append(value)
        if per_epoch:
            epochs = sorted(per_epoch)
            curves.plot(epochs, [statistics.fmean(per_epoch[e]) for e in epochs], marker="o", label=name)
    curves.set_xlabel("epoch")
    curves.set_ylabel("val mIoU (mean over seeds)")
    curves.set_title("validation mIoU per epoch")
    if curves.lines:
        curves.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write ``comparison.{csv,md,png}`` into ``sweep_dir``; returns (one row per run, one row per decoder)."""
    sweep_dir = Path(sweep_dir)
    rows = [read_run(run) for run in run_folders(sweep_dir)]
    if not rows:
        raise FileNotFoundError(f"{sweep_dir} holds no runs (folders with .hydra/config.yaml)")
    with open(sweep_dir / "comparison.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUN_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    table = summarise(rows)
    (sweep_dir / "comparison.md").write_text(markdown(table, rows, sweep_dir))
    plot(table, rows, sweep_dir / "comparison.png")
    return rows, table


class ComparisonCallback(Callback):
    """Hydra callback: at the end of a multirun, compare its runs; exit non-zero if any run failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows, _ = compare(sweep_dir)
        print((sweep_dir / "comparison.md").read_text())
        failed = [row for row in rows if row["status"] != "ok"]
        if failed:
            print(
                f"error: {len(failed)} of {len(rows)} runs failed; see {sweep_dir / 'comparison.md'}", file=sys.stderr
            )
            sys.exit(1)
