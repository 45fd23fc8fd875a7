"""Errors a user can cause — a bad config value, missing data, a corrupt file — as opposed to bugs.

Scripts print the message of an :class:`UpsegError` as one line and exit with status 2; its message is one clear
sentence naming the thing at fault and the fix. Every package of upseg may import this module; it imports nothing.
"""

from __future__ import annotations


class UpsegError(Exception):
    """A problem the user can fix: the message says what and how."""


class ConfigError(UpsegError, ValueError):
    """A config value that cannot work."""


class DataError(UpsegError):
    """Missing, unreadable or inconsistent data."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name when it has none): a library's error inside one of
    ours."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
