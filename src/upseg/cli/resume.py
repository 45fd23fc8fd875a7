"""Resuming a sweep: the same command again, on its folder, with ``resume=true``::

    python scripts/train.py -m <the sweep's arguments> hydra.sweep.dir=<its folder> resume=true

so that a long sweep can be split over several sittings, or survive a crash.

- **At the start** (:func:`check_resumable`, called by the run-folder callback before Hydra writes anything): the
  folder must hold a sweep (Hydra's ``multirun.yaml``), and that sweep must be this one — the same config and the
  same swept values, ``resume`` itself aside — or the sweep stops in one line naming the keys that differ (exit
  status 2). Only Hydra's basic sweeper enumerates its jobs the same way every time; an Optuna search continues
  through its own storage instead. Then (:func:`keep_job_records`) every job folder's ``.hydra/`` — the record of
  the command, config and machine that made the run, which Hydra writes again for each job it starts — is copied to
  ``<sweep>/.job_records/<n>/``.
- **Per job** (:func:`earlier_result`, the first thing a run does): Hydra gives job ``n`` the folder ``<sweep>/<n>/``
  again and, the sweep being the same, the same overrides. A job whose folder holds the ``metrics.json`` of those
  overrides is complete: its result is read back, its original ``.hydra/`` is put back in place of the one Hydra
  has just written, and nothing is trained. Any other job — failed (``error.txt``) or unfinished (killed before
  ``metrics.json``) — runs again from the start, after what its earlier attempt left (everything but the log, which
  Hydra has just reopened, with the attempt's own ``.hydra/`` record) has moved to
  ``<sweep>/.earlier_attempts/<n>_<k>/``: nothing is deleted, and the comparison does not read it.
- **At the end** the comparison covers every run of the sweep, kept and new.

A job runs again from the start, not from its ``last.ckpt``: resuming in mid-training draws the rest of an
interrupted epoch afresh, so its result would differ from an uninterrupted run's; from the start, a resumed sweep
gives what one uninterrupted sweep gives.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from upseg.cli.task import in_multirun, is_rank_zero
from upseg.errors import ConfigError

log = logging.getLogger("upseg")
RESUME_KEY = "resume"
EARLIER_ATTEMPTS = ".earlier_attempts"
JOB_RECORDS = ".job_records"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
LISTED = 6  # differing keys named in the one line; the rest are counted


def split_override(line: str) -> tuple[str, str]:
    key, _, value = str(line).partition("=")
    return key.lstrip("+~"), value


def without_resume(overrides: list[str]) -> list[str]:
    return [line for line in map(str, overrides) if split_override(line)[0] != RESUME_KEY]


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A config as ``{dotted key: value}`` (lists kept whole; interpolations as written)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): node}


def sweep_definition(config: DictConfig) -> dict[str, Any]:
    """What decides a sweep's jobs: the task config (without ``hydra`` and ``resume``; it holds every override that
    is not swept) and the swept values, ``<key> (swept)``: the sweeper's ``params``, and the command line's sweeps,
    which replace them."""
    task = OmegaConf.to_container(config, resolve=False)
    task.pop("hydra", None)
    task.pop(RESUME_KEY, None)
    definition = flat(task)
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    definition.update({f"{key} (swept)": str(value) for key, value in params.items()})
    lines = without_resume(list(OmegaConf.select(config, "hydra.overrides.task") or []))
    for override in OverridesParser.create().parse_overrides(lines):
        if override.is_sweep_override():
            key, value = split_override(override.input_line)
            definition[f"{key} (swept)"] = value
    return definition


def differences(earlier: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``key (earlier → now)`` for every key whose value differs (``–``: absent)."""
    keys = list(dict.fromkeys([*earlier, *now]))
    return [
        f"{key} ({earlier.get(key, '–')} → {now.get(key, '–')})" for key in keys if earlier.get(key) != now.get(key)
    ]


def check_resumable(config: DictConfig, folder: Path) -> None:
    """One :class:`ConfigError` unless the sweep in ``folder`` can be resumed by ``config`` (see the module
    docstring)."""
    sweeper = OmegaConf.select(config, "hydra.sweeper._target_")
    if sweeper != BASIC_SWEEPER:
        raise ConfigError(
            f"resume=true continues a sweep of Hydra's basic sweeper, not {sweeper}; an Optuna search continues "
            "through its storage (hydra.sweeper.storage=sqlite:///optuna.db)"
        )
    recorded = folder / "multirun.yaml"
    if not recorded.is_file():
        raise ConfigError(
            f"resume=true: {folder} holds files but no multirun.yaml, so it is not a sweep that can be resumed; "
            "give the folder of a sweep (hydra.sweep.dir)"
        )
    changed = differences(sweep_definition(OmegaConf.load(recorded)), sweep_definition(config))
    if changed:
        more = f", and {len(changed) - LISTED} more" if len(changed) > LISTED else ""
        raise ConfigError(
            f"resume=true: the sweep in {folder} was started with another config; keys that differ: "
            f"{'; '.join(changed[:LISTED])}{more}; resume it with the arguments it was started with, or start a new "
            "sweep in another hydra.sweep.dir"
        )


def job_folders(sweep_dir: Path, output_subdir: str) -> list[Path]:
    """The job folders of a sweep: those holding an ``output_subdir`` record, outside the dot folders."""
    return sorted(
        record.parent
        for record in sweep_dir.rglob(output_subdir)
        if record.is_dir() and not any(part.startswith(".") for part in record.parent.relative_to(sweep_dir).parts)
    )


def keep_job_records(config: DictConfig, sweep_dir: Path) -> None:
    """Copy each job folder's record (``.hydra/``) to ``<sweep>/.job_records/<job>/`` before Hydra writes it again.
    A copy already there is the original, left by a resume that was itself cut short, and stays."""
    output_subdir = OmegaConf.select(config, "hydra.output_subdir")
    if output_subdir is None:
        return
    for job in job_folders(sweep_dir, str(output_subdir)):
        kept = sweep_dir / JOB_RECORDS / job.relative_to(sweep_dir)
        if not kept.exists():
            shutil.copytree(job / str(output_subdir), kept)


def job_overrides() -> list[str]:
    """The overrides of the running Hydra job (empty outside Hydra)."""
    if not HydraConfig.initialized():
        return []
    return [str(line) for line in HydraConfig.get().overrides.task]


def kept_record(folder: Path, sweep_dir: Path) -> Path:
    """Where :func:`keep_job_records` copied the original record of the job in ``folder``."""
    return sweep_dir / JOB_RECORDS / folder.relative_to(sweep_dir)


def restore_record(folder: Path, sweep_dir: Path, output_subdir: str) -> None:
    """Put a kept job's original record back in place of the one Hydra wrote for this sitting."""
    kept = kept_record(folder, sweep_dir)
    if not kept.is_dir():
        return
    shutil.rmtree(folder / output_subdir, ignore_errors=True)
    shutil.move(str(kept), folder / output_subdir)


def set_aside(folder: Path, sweep_dir: Path, output_subdir: str | None) -> Path | None:
    """Move what an earlier attempt left in ``folder`` — all but the record Hydra has just written and the logs —
    with the attempt's own record, to the next free ``<sweep>/.earlier_attempts/<folder name>_<k>/``; None when it
    left nothing."""
    left = [path for path in folder.iterdir() if path.name != output_subdir and path.suffix != ".log"]
    record = kept_record(folder, sweep_dir) if output_subdir is not None else None
    if record is not None and not record.is_dir():
        record = None
    if not left and record is None:
        return None
    attempt = 1
    while (target := sweep_dir / EARLIER_ATTEMPTS / f"{folder.name}_{attempt}").exists():
        attempt += 1
    target.mkdir(parents=True)
    for path in left:
        shutil.move(str(path), target / path.name)
    if record is not None:
        shutil.move(str(record), target / str(output_subdir))
    return target


def earlier_result(cfg: DictConfig) -> dict[str, Any] | None:
    """In a resumed sweep, the summary of this job's complete earlier run (nothing is to be done), else None — after
    setting aside what an incomplete attempt left (see the module docstring)."""
    if not cfg.get(RESUME_KEY) or not in_multirun():
        return None
    hydra = HydraConfig.get()
    folder, sweep_dir, output_subdir = Path(hydra.runtime.output_dir), Path(hydra.sweep.dir), hydra.output_subdir
    metrics = folder / "metrics.json"
    if metrics.is_file():
        summary = json.loads(metrics.read_text())
        recorded = summary.get("overrides")
        if recorded is None or without_resume(recorded) == without_resume(job_overrides()):
            if is_rank_zero() and output_subdir is not None:
                restore_record(folder, sweep_dir, output_subdir)
            log.info("resume: %s is complete (metrics.json); kept, not trained again", folder)
            return summary
    moved = set_aside(folder, sweep_dir, output_subdir) if is_rank_zero() else None
    if moved is not None:
        log.info(
            "resume: %s was not complete; its earlier attempt is kept in %s and the run starts again", folder, moved
        )
    return None
