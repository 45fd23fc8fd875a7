"""``scripts/train.py``'s path in this process: the command line checked, the config composed, the task run.

A table of wrong values needs one run per row; in a subprocess each row costs a Python importing torch and Lightning
(seconds), here a compose. The script's own wrapper (its Hydra entry point, its exit status as a process, what else
it prints) is tested by running a few of the rows as a user would (:mod:`.scripts`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

from tests.helpers.configs import CONFIG_DIR, compose_config
from upseg.cli.overrides import check_command_line
from upseg.cli.task import run_task
from upseg.training.train import train


def train_in_process(overrides: Sequence[str], output: Path) -> tuple[int, str]:
    """The exit status ``scripts/train.py <overrides>`` ends with (0 when it returns) and what it wrote to stderr,
    its outputs under ``output``."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            check_command_line(CONFIG_DIR, "train", list(overrides))
            run_task(train, compose_config("train", output, overrides))
    except SystemExit as end:
        return (end.code if isinstance(end.code, int) else 1), stderr.getvalue()
    finally:
        GlobalHydra.instance().clear()
    return 0, stderr.getvalue()
