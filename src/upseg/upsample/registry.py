"""The upsampler registry and the one builder that models go through.

Every registered class takes ``(in_channels, out_channels, scale_factor, **options)`` and maps
``N×in_channels×H×W`` → ``N×out_channels×(scale_factor·H)×(scale_factor·W)`` for any ``H, W``.

Guidance: a class with ``needs_guide = True`` is called ``up(x, guide)``, where ``guide`` is the
``N×guide_channels×(scale_factor·H)×(scale_factor·W)`` feature of the encoder at the output resolution (a U-Net
skip, an FCN pool feature), and takes the keyword option ``guide_channels``, which the model fills in. Every other
upsampler is called ``up(x)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

UPSAMPLERS: dict[str, type[nn.Module]] = {}

ModuleType = TypeVar("ModuleType", bound=type[nn.Module])


def register_upsampler(name: str) -> Callable[[ModuleType], ModuleType]:
    """Class decorator: make ``cls`` buildable as ``build_upsampler(name, ...)``."""

    def decorate(cls: ModuleType) -> ModuleType:
        if name in UPSAMPLERS:
            raise ValueError(f"upsampler {name!r} is already registered by {UPSAMPLERS[name].__qualname__}")
        UPSAMPLERS[name] = cls
        return cls

    return decorate


def needs_guide(upsampler: nn.Module | type[nn.Module] | str) -> bool:
    """Whether an upsampler (a module, its class or its registered name) is called ``up(x, guide)``."""
    if isinstance(upsampler, str):
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"unknown upsampler {upsampler!r}; valid names: {', '.join(sorted(UPSAMPLERS))}")
        upsampler = UPSAMPLERS[upsampler]
    return bool(getattr(upsampler, "needs_guide", False))


def upsampler_options(name: str) -> list[str]:
    """The keyword options that upsampler ``name`` accepts beyond the shared three."""
    parameters = inspect.signature(UPSAMPLERS[name].__init__).parameters
    shared = {"self", "in_channels", "out_channels", "scale_factor"}
    return [p for p in parameters if p not in shared and parameters[p].kind is inspect.Parameter.KEYWORD_ONLY]


def build_upsampler(name: str, in_channels: int, out_channels: int, scale_factor: int = 2, **options: Any) -> nn.Module:
    """Build the registered upsampler ``name``; unknown names and options raise ``ValueError`` listing valid ones."""
    if name not in UPSAMPLERS:
        raise ValueError(f"unknown upsampler {name!r}; valid names: {', '.join(sorted(UPSAMPLERS))}")
    if isinstance(scale_factor, bool) or not isinstance(scale_factor, int) or scale_factor < 1:
        raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
    for what, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be a positive int, got {value!r}")
    valid = upsampler_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"upsampler {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {', '.join(valid)}"
        )
    if needs_guide(name) and options.get("guide_channels") is None:
        raise ValueError(
            f"upsampler {name!r} is guided by an encoder feature: give guide_channels, its channel count "
            "(the U-Net and FCN fill it in)"
        )
    return UPSAMPLERS[name](in_channels, out_channels, scale_factor, **options)
