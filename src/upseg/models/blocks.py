"""Building blocks shared by the networks: conv-BN-ReLU, the two-conv U-Net block, pad-to-multiple, and the decoder
upsamplers (built through the one builder, called with their guide when they take one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.upsample import build_upsampler, needs_guide


class ConvBNReLU(nn.Sequential):
    """``Conv2d(k, padding=k//2, bias=False) → BatchNorm2d → ReLU``: ``N×C_in×H×W`` → ``N×C_out×H×W``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBNReLU` (the U-Net block): ``N×C_in×H×W`` → ``N×C_out×H×W``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(ConvBNReLU(in_channels, out_channels), ConvBNReLU(out_channels, out_channels))


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad bottom/right so H and W are multiples of ``multiple``; returns the padded input and the original size.

    After normalisation zero is the dataset mean, so the padding looks like a neutral border.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x, (height, width)


def decoder_upsampler(
    decoder: Mapping[str, Any], in_channels: int, out_channels: int, scale_factor: int, guide_channels: int
) -> nn.Module:
    """The upsampler a decoder config ``{name: ..., options: {...}}`` asks for, through the one builder.

    ``guide_channels`` is the channel count of the feature the model passes as the guide (see :func:`upsample`); it
    becomes the option of that name for the upsamplers that take a guide.
    """
    if "name" not in decoder:
        raise ConfigError(f"the decoder config needs a `name` (e.g. decoder=transpose), got {dict(decoder)}")
    options = dict(decoder.get("options") or {})
    try:
        if needs_guide(decoder["name"]):
            if options.get("guide_channels") is not None:
                raise ConfigError(
                    "decoder.options.guide_channels is set by the model (the channels of its encoder feature); "
                    "remove it from the decoder config"
                )
            options["guide_channels"] = guide_channels
        return build_upsampler(decoder["name"], in_channels, out_channels, scale_factor, **options)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(f"decoder: {error}") from error


def upsample(upsampler: nn.Module, x: Tensor, guide: Tensor) -> Tensor:
    """``upsampler(x, guide)`` for an upsampler that takes a guide (the encoder feature at the output resolution),
    else ``upsampler(x)``."""
    return upsampler(x, guide) if needs_guide(upsampler) else upsampler(x)
