"""What the thin scripts share: a user error becomes one line and a non-zero exit; a failed sweep run is recorded."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from upseg.cli.validation import innermost
from upseg.errors import UpsegError

log = logging.getLogger("upseg")
Result = TypeVar("Result")
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def user_error(error: BaseException) -> UpsegError | None:
    """The :class:`UpsegError` behind ``error`` (Hydra wraps errors raised while instantiating), if any."""
    cause = innermost(error)
    return cause if isinstance(cause, UpsegError) else None


def one_line(error: UpsegError) -> str:
    """The error's own sentence; a DataLoader worker re-raises it with the worker's traceback in front."""
    text = str(error)
    if "Original Traceback" in text:
        text = text.strip().splitlines()[-1]
        text = text.split(": ", 1)[1] if text.startswith(f"{type(error).__module__}.") else text
    return text


def is_rank_zero() -> bool:
    """Whether this is the first process of a run (Lightning, torchrun and SLURM start the others)."""
    return all(os.environ.get(variable, "0") == "0" for variable in RANK_VARIABLES)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(error: Exception, cause: UpsegError | None) -> None:
    """Keep a failed sweep job's error in its folder (``error.txt``) so the comparison lists it, and go on."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    text = one_line(cause) if cause is not None else "".join(traceback.format_exception(error))
    (output_dir / "error.txt").write_text(text.rstrip() + "\n")
    log.error("run failed: %s", text.strip().splitlines()[-1])


def run_task(task: Callable[..., Result], *args: Any) -> Result | None:
    """Run ``task``; a user error ends the process with its one-line message and exit status 2.

    In a sweep, a failed run is recorded (``error.txt``) and the sweep goes on; the comparison at its end lists it
    and the sweep exits non-zero.
    """
    try:
        return task(*args)
    except Exception as error:
        cause = user_error(error)
        if in_multirun():
            record_failure(error, cause)
            return None
        if cause is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {one_line(cause)}", file=sys.stderr, flush=True)
        sys.exit(2)
