"""Errors a user can cause — a bad config value, missing data, a corrupt file — as opposed to bugs.

Scripts print the message of an :class:`UpsegError` as one line and exit with status 2; its message is one clear
sentence naming the thing at fault and the fix.
"""

from __future__ import annotations


class UpsegError(Exception):
    """A problem the user can fix: the message says what and how."""


class ConfigError(UpsegError, ValueError):
    """A config value that cannot work."""


class DataError(UpsegError):
    """Missing, unreadable or inconsistent data."""
