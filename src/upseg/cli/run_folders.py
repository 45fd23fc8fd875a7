"""Nothing is lost: a run never writes into the folder of an earlier run.

A Hydra callback, run before Hydra creates the run folder and writes ``.hydra/`` into it:

- a single run whose folder (``hydra.run.dir``) already exists and is not empty writes to a new version beside it,
  ``<folder>_v2`` (``_v3``, … when that is taken too), and says so in one line; the earlier run's config, logs,
  checkpoints and ``metrics.json`` stay as they were;
- a multirun whose sweep folder (``hydra.sweep.dir``) already holds files is refused in one line, exit status 2:
  its job folders ``0/``, ``1/``, … would be those of the earlier sweep — unless it asks to continue that sweep,
  ``resume=true`` (:mod:`upseg.cli.resume`: complete runs are kept, the others run again, and a sweep whose config
  differs from the folder's is refused in one line naming the keys).

A timestamped default folder (``logs/train/runs/<date>_<time>``) is new unless two runs start within the same
second, which then get ``…_v2``. Processes that Lightning or a cluster start for ranks other than 0 use the folder
rank 0 chose, as they must.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from upseg.cli.resume import RESUME_KEY, check_resumable, keep_job_records
from upseg.cli.task import is_rank_zero
from upseg.errors import ConfigError


def holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def next_free_version(folder: Path) -> Path:
    """``folder`` if it is missing or empty, else the first of ``<folder>_v2``, ``<folder>_v3``, … that is."""
    version, candidate = 1, folder
    while holds_files(candidate):
        version += 1
        candidate = folder.with_name(f"{folder.name}_v{version}")
    return candidate


class KeepEarlierRuns(Callback):
    """Hydra callback: a new version of a reused run folder, a refusal for a reused sweep folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_rank_zero():
            return
        if config.get(RESUME_KEY):
            stop(
                "resume=true continues a sweep (python scripts/train.py -m … hydra.sweep.dir=<its folder> "
                "resume=true); a single run resumes from its checkpoint with ckpt_path=<run>/checkpoints/last.ckpt"
            )
        folder = Path(str(OmegaConf.select(config, "hydra.run.dir")))
        free = next_free_version(folder)
        if free != folder:
            with read_write(config), open_dict(config):
                config.hydra.run.dir = str(free)
            print(f"note: {folder} holds an earlier run, which is kept; this run writes to {free}", file=sys.stderr)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_rank_zero():
            return
        folder = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        if not holds_files(folder):
            return
        if not config.get(RESUME_KEY):
            stop(
                f"hydra.sweep.dir {folder} already holds an earlier sweep, whose run folders this one would "
                "overwrite; give a new folder (or leave hydra.sweep.dir at its timestamped default), or add "
                "resume=true to continue that sweep"
            )
        try:
            check_resumable(config, folder)
        except ConfigError as error:
            stop(str(error))
        keep_job_records(config, folder)
        print(f"note: resuming the sweep in {folder}: complete runs are kept, the others run again", file=sys.stderr)


def stop(message: str) -> None:
    """End the process with ``error: <message>`` and exit status 2, as a config error does."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
