"""What the thin scripts share: turning a user error into one line and a non-zero exit."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import InstantiationException

from upseg.errors import UpsegError

log = logging.getLogger("upseg")
Result = TypeVar("Result")


def user_error(error: BaseException) -> UpsegError | None:
    """The :class:`UpsegError` behind ``error`` (Hydra wraps errors raised while instantiating), if any."""
    while error is not None:
        if isinstance(error, UpsegError):
            return error
        if not isinstance(error, InstantiationException):
            return None
        error = error.__cause__ or error.__context__
    return None


def one_line(error: UpsegError) -> str:
    """The error's own sentence; a DataLoader worker re-raises it with the worker's traceback in front."""
    text = str(error)
    if "Original Traceback" in text:
        text = text.strip().splitlines()[-1]
        text = text.split(": ", 1)[1] if text.startswith(f"{type(error).__module__}.") else text
    return text


def run_task(task: Callable[..., Result], *args: Any) -> Result:
    """Run ``task``; a user error ends the process with its one-line message and exit status 2."""
    try:
        return task(*args)
    except Exception as error:
        cause = user_error(error)
        if cause is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {one_line(cause)}", file=sys.stderr, flush=True)
        sys.exit(2)
