"""Segmentation networks. Each asks :func:`upseg.upsample.build_upsampler` for its upsamplers and maps
``N×C×H×W`` → logits ``N×num_classes×H×W`` for any ``H, W``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from upseg.errors import ConfigError
from upseg.models.fcn import FCN
from upseg.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "fcn": FCN}


def build_model(name: str, num_classes: int, decoder: Mapping[str, Any], **options: Any) -> nn.Module:
    """The network ``name`` (``unet`` or ``fcn``) with ``decoder = {name, options}`` for its upsamplers."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    try:
        return MODELS[name](num_classes=num_classes, decoder=decoder, **options)
    except TypeError as error:
        raise ConfigError(f"model {name!r}: {error}") from error


__all__ = ["FCN", "MODELS", "UNet", "build_model"]
