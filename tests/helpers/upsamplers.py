"""Building any registered upsampler and its inputs alike, guided or not, for the tests."""

from __future__ import annotations

import torch
from torch import nn

from upseg.upsample import build_upsampler, needs_guide

GUIDE_CHANNELS = 3


def build(name: str, in_channels: int, out_channels: int, scale: int, **options) -> nn.Module:
    """``build_upsampler`` with ``guide_channels`` filled in for the upsamplers that take a guide."""
    if needs_guide(name):
        options.setdefault("guide_channels", GUIDE_CHANNELS)
    return build_upsampler(name, in_channels, out_channels, scale, **options)


def inputs(
    name: str,
    batch: int,
    channels: int,
    size: tuple[int, int],
    scale: int,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[torch.Tensor, ...]:
    """``(x,)``, or ``(x, guide)`` with the guide at the output resolution for the upsamplers that take one."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=generator, dtype=dtype)
    if not needs_guide(name):
        return (x,)
    guide = torch.randn(batch, GUIDE_CHANNELS, scale * size[0], scale * size[1], generator=generator, dtype=dtype)
    return (x, guide)


def randomised(layer: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
    """``layer`` in float64 with every parameter redrawn, so that no path starts at zero (DySample's offsets do)."""
    generator = torch.Generator().manual_seed(seed)
    layer = layer.double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return layer
