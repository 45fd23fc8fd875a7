"""Gather a sweep's runs into a comparison of upsamplers (:mod:`upseg.analysis.comparison`) and write it:
``comparison.csv`` (one row per run), ``comparison.md``, ``comparison_summary.csv`` (one row per decoder, or per
group and decoder) and ``comparison.png`` — for a sweep of several groups (architectures), also
``comparison_interactions.csv``, and the picture is each group's differences to the baseline — what
``scripts/compare.py`` and the Hydra callback at the end of a multirun call.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from upseg.analysis.comparison import SweepComparison, build_comparison
from upseg.analysis.plots import plot_comparison, plot_group_differences
from upseg.analysis.report import interaction_rows, markdown, summary_rows, write_csv
from upseg.analysis.sweep import run_columns
from upseg.errors import UpsegError


def compare(
    sweep_dir: str | Path,
    baseline: str | None = "transpose",
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> SweepComparison:
    """Write ``comparison.{csv,md,png}`` and ``comparison_summary.csv`` (and ``comparison_interactions.csv``) into
    ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, baseline, samples, confidence, seed)
    write_csv(sweep_dir / "comparison.csv", comparison.rows, run_columns())
    summary = summary_rows(comparison)
    columns = list(dict.fromkeys(key for row in summary for key in row))
    write_csv(sweep_dir / "comparison_summary.csv", summary, columns)
    (sweep_dir / "comparison.md").write_text(markdown(comparison, sweep_dir, confidence, samples))
    if len(comparison.groups) > 1:
        interactions = interaction_rows(comparison)
        write_csv(
            sweep_dir / "comparison_interactions.csv", interactions, list(interactions[0]) if interactions else []
        )
        plot_group_differences(comparison, sweep_dir / "comparison.png")
    else:
        plot_comparison(next(iter(comparison.groups.values())), sweep_dir / "comparison.png")
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
