"""What the thin scripts share: a user error becomes one line and a non-zero exit; a failed sweep run is recorded;
SIGTERM ends a sweep.

A sweep runs its jobs one after another in one process and records a failed job to go on with the next. SIGTERM
(``timeout``, SLURM before preemption, ``kill``) must end the sweep wherever it lands: during a fit Lightning turns it
into an exception that saves ``last.ckpt`` and ends the process; while a job tests, builds or measures, the job is let
finish (or, when ``timeout`` signalled the whole process group and the DataLoader workers died, fail) and the sweep
then ends with status 143 instead of starting the next job. A job it stopped is not recorded as failed: it has no
``metrics.json``, so ``resume=true`` runs it again.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException

from upseg.cli.validation import innermost
from upseg.errors import UpsegError

log = logging.getLogger("upseg")
Result = TypeVar("Result")
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
TERMINATED_STATUS = 128 + signal.SIGTERM  # the shell's status for a process ended by SIGTERM


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


class SigtermSeen:
    """Whether SIGTERM arrived while installed (as a handler that only notes it; Lightning's own, installed for each
    fit and test, runs before it)."""

    def __init__(self) -> None:
        self.received = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.received = True

    @contextmanager
    def installed(self) -> Iterator[SigtermSeen]:
        if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
            yield self
            return
        previous = signal.signal(signal.SIGTERM, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)

    def end_sweep_if_received(self) -> None:
        if self.received:
            job = HydraConfig.get().job.get("num", "?") if HydraConfig.initialized() else "?"
            print(
                f"SIGTERM during job {job}: the sweep ends here; the same command with resume=true continues it",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(TERMINATED_STATUS)


def run_task(task: Callable[..., Result], *args: Any) -> Result | None:
    """Run ``task``; a user error ends the process with its one-line message and exit status 2, SIGTERM with 143.

    In a sweep, a failed run is recorded (``error.txt``) and the sweep goes on; the comparison at its end lists it
    and the sweep exits non-zero. SIGTERM during a sweep's job ends the sweep after that job (status 143).
    """
    if not in_multirun():
        return run_single(task, *args)
    with SigtermSeen().installed() as sigterm:
        try:
            result = task(*args)
        except SIGTERMException:  # Lightning ended a fit (last.ckpt saved) or a test
            sigterm.end_sweep_if_received()
            raise SystemExit(TERMINATED_STATUS) from None
        except Exception as error:
            sigterm.end_sweep_if_received()  # stopped, not failed: no error.txt, resume=true runs it again
            record_failure(error, user_error(error))
            return None
        sigterm.end_sweep_if_received()
        return result


def run_single(task: Callable[..., Result], *args: Any) -> Result:
    try:
        return task(*args)
    except SIGTERMException:
        # Lightning ends a fit or a test on SIGTERM with SystemExit and no status, which would read as success.
        raise SystemExit(TERMINATED_STATUS) from None
    except Exception as error:
        cause = user_error(error)
        if cause is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {one_line(cause)}", file=sys.stderr, flush=True)
        sys.exit(2)
