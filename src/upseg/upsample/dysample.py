"""DySample: upsampling by point sampling (Liu et al., "Learning to Upsample by Learning to Sample", ICCV 2023).

``N×C_in×h×w`` → ``N×C_out×sh×sw``. The input is first projected to ``C_out`` channels by a 1×1 convolution at the
low resolution (:mod:`upseg.upsample.ops.projection`; exact with one group, and ``s²`` times cheaper than after), and
those channels are split into ``g`` groups (``groups``, default 4) of ``C_out/g``.

Offsets: a 1×1 convolution of the input predicts ``2·g·s²`` channels per source pixel, scaled by 0.25 (the paper's
"static scope", which keeps neighbouring sampling points from overlapping); with ``dynamic_scope=true`` the factor
is ``0.5·sigmoid(second 1×1 conv)`` per offset instead. A pixel shuffle by ``s`` turns them into ``N×2g×sh×sw``:
for output pixel ``(i, j)`` and group ``γ``, an offset ``(Δx, Δy)`` in input pixels (channels ``2γ`` and ``2γ+1``).

Sampling: with pixel ``k`` of the input covering ``[k, k+1)``, output pixel ``(i, j)`` of group ``γ`` is the bilinear
sample of that group's channels at

    x = (j + ½)/s + Δx,   y = (i + ½)/s + Δy     (input pixel units, pixel centres at k + ½),

by ``F.grid_sample(mode="bilinear", align_corners=False, padding_mode="border")``: positions beyond the outer pixel
centres take the border value, so the bilinear weights always sum to one. With zero offsets ``(i + ½)/s`` is the
centre of output pixel ``i`` seen from the input, and the layer is exactly ``F.interpolate(mode="bilinear",
align_corners=False)`` (after its projection). The offset convolutions start at zero, so the layer starts as plain
bilinear upsampling and learns where to deviate.

Sampling runs in at least float32 (under bf16 autocast too) and returns the features' dtype: a bf16 coordinate
resolves 1/128 of the image, about two pixels of a 256-pixel map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.upsample.ops.options import divisor
from upseg.upsample.ops.projection import channel_projection
from upseg.upsample.registry import register_upsampler

STATIC_SCOPE = 0.25  # offsets of at most a quarter pixel (times the prediction) keep sampling points apart
DYNAMIC_SCOPE = 0.5  # times a sigmoid in (0, 1): at most half a pixel per unit of prediction


def sample_at_offsets(features: Tensor, offsets: Tensor, groups: int) -> Tensor:
    """Bilinear samples of ``features`` (``N×C×h×w``) at the sub-pixel centres of an ``s``-times finer grid moved by
    ``offsets`` (``N×2g×sh×sw``, ``(Δx, Δy)`` per group in input pixels) → ``N×C×sh×sw`` (see the module docstring).
    """
    n, channels, height, width = features.shape
    out_height, out_width = offsets.shape[-2:]
    dtype = torch.promote_types(features.dtype, torch.float32)
    offsets = offsets.to(dtype).view(n, groups, 2, out_height, out_width)
    # Centre of output pixel i in input pixel units: (i + ½)·h / H_out, that is (i + ½)/s.
    xs = (torch.arange(out_width, device=features.device, dtype=dtype) + 0.5) * (width / out_width)
    ys = (torch.arange(out_height, device=features.device, dtype=dtype) + 0.5) * (height / out_height)
    x = xs + offsets[:, :, 0]
    y = ys[:, None] + offsets[:, :, 1]
    # grid_sample's normalised coordinates, align_corners=False: -1 and 1 are the outer edges of the image.
    grid = torch.stack((2 * x / width - 1, 2 * y / height - 1), dim=-1)
    sampled = F.grid_sample(
        features.to(dtype).reshape(n * groups, channels // groups, height, width),
        grid.view(n * groups, out_height, out_width, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return sampled.view(n, channels, out_height, out_width).to(features.dtype)


@register_upsampler("dysample")
class DySampleUpsampler(nn.Module):
    """DySample (LP variant); options ``groups`` (dividing ``out_channels``) and ``dynamic_scope``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        groups: int = 4,
        dynamic_scope: bool = False,
    ) -> None:
        super().__init__()
        self.groups = divisor("groups", groups, "out_channels", out_channels)
        if not isinstance(dynamic_scope, bool):
            raise ValueError(f"dynamic_scope must be true or false, got {dynamic_scope!r}")
        self.scale_factor = scale_factor
        self.project = channel_projection(in_channels, out_channels)
        offset_channels = 2 * groups * scale_factor**2
        self.offset = nn.Conv2d(in_channels, offset_channels, 1)
        self.scope = nn.Conv2d(in_channels, offset_channels, 1) if dynamic_scope else None
        for conv in (self.offset, self.scope):
            if conv is not None:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def offsets(self, x: Tensor) -> Tensor:
        """``N×C_in×h×w`` → sampling offsets ``N×2g×sh×sw`` in input pixels, ``(Δx, Δy)`` per group."""
        offsets = self.offset(x)
        if self.scope is None:
            offsets = offsets * STATIC_SCOPE
        else:
            offsets = offsets * (DYNAMIC_SCOPE * torch.sigmoid(self.scope(x)))
        return F.pixel_shuffle(offsets, self.scale_factor)

    def forward(self, x: Tensor) -> Tensor:
        return sample_at_offsets(self.project(x), self.offsets(x), self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, scale_factor={self.scale_factor}, dynamic_scope={self.scope is not None}"
