"""Checks of upsampler options: each returns the value or raises one ``ValueError`` that names the option and the
values it accepts (the scripts turn it into one line)."""

from __future__ import annotations

from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int ≥ 1."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def odd_kernel(name: str, value: Any) -> int:
    """``value`` if it is a positive odd int: a kernel centred on its pixel, so that padding ``k // 2`` keeps the
    size."""
    if not _is_int(value) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int (1, 3, 5, ...) so the size is kept, got {value!r}")
    return value


def divisor(name: str, value: Any, of_name: str, of: int) -> int:
    """``value`` if it is a positive int dividing ``of`` (called ``of_name`` in the message)."""
    if not _is_int(value) or value < 1 or of % value:
        valid = ", ".join(str(d) for d in range(1, of + 1) if of % d == 0)
        raise ValueError(f"{name}={value!r} must divide {of_name}={of}; valid values: {valid}")
    return value


def channel_width(name: str, value: Any, in_channels: int) -> int:
    """A channel count given as a positive int, or as ``"in/D"`` (``D`` a positive int): the input's
    ``in_channels // D``, at least 1, a width that follows the input (e.g. ``"in/4"``: 256 → 64, 32 → 8)."""
    if _is_int(value) and value >= 1:
        return value
    text = value.replace(" ", "") if isinstance(value, str) else ""
    prefix, _, divisor_text = text.partition("/")
    if prefix == "in" and divisor_text.isdigit() and int(divisor_text) >= 1:
        return max(1, in_channels // int(divisor_text))
    raise ValueError(
        f"{name} must be a positive int or 'in/D' with D a positive int (the input's channels divided by D, e.g. "
        f"'in/4'), got {value!r}"
    )
