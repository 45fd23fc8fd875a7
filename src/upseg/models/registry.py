"""The network registry and the one builder the LightningModule goes through.

Every registered class is a :class:`~upseg.models.base.SegmentationNetwork` built as
``Network(num_classes, decoder, **options)``; ``model.net`` in the config is ``{name, **options}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from upseg.errors import ConfigError
from upseg.models.base import SegmentationNetwork

NETWORKS: dict[str, type[SegmentationNetwork]] = {}

NetworkType = TypeVar("NetworkType", bound=type[SegmentationNetwork])


def register_network(name: str) -> Callable[[NetworkType], NetworkType]:
    """Class decorator: make ``cls`` buildable as ``build_network(name, ...)`` (``model.net.name=<name>``)."""

    def decorate(cls: NetworkType) -> NetworkType:
        if name in NETWORKS:
            raise ValueError(f"network {name!r} is already registered by {NETWORKS[name].__qualname__}")
        if not issubclass(cls, SegmentationNetwork):
            raise TypeError(f"network {name!r} must subclass SegmentationNetwork, got {cls.__qualname__}")
        NETWORKS[name] = cls
        return cls

    return decorate


def build_network(name: str, num_classes: int, decoder: Mapping[str, Any], **options: Any) -> SegmentationNetwork:
    """The registered network ``name`` with ``decoder = {name, options}`` for its upsamplers."""
    if name not in NETWORKS:
        raise ConfigError(f"model.net.name={name!r} is not a network; valid: {', '.join(sorted(NETWORKS))}")
    try:
        return NETWORKS[name](num_classes=num_classes, decoder=decoder, **options)
    except TypeError as error:  # an option the network does not take (the config check names it first)
        raise ConfigError(f"model.net ({name}): {error}") from error
