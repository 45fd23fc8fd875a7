"""U-Net (Ronneberger et al., 2015) whose decoder upsamplers are chosen by name, with or without its skips.

``N×C_in×H×W`` → logits ``N×num_classes×H×W`` for any ``H, W``: the input is zero-padded to a multiple of
``2^depth`` (its ``size_multiple``) and the logits cropped back. The encoder (``plain``, a torchvision ResNet or
``timm:<name>``, :func:`~upseg.models.encoders.build_encoder`) gives features at levels ``0 … depth`` (level ``i``
at stride ``2^i``). Decoder stage ``i`` (run from the deepest, ``i = depth − 1``, up to ``i = 0``): upsampler ×2 from
``channels[i+1]`` to ``decoder_channels[i]`` → concatenate the level-``i`` skip, if the stage keeps one → two
conv-BN-ReLU. Decoder widths default to the encoder's widths (plain) or ``16·2^i`` (ResNet, timm) and can be set
with ``decoder_channels`` (shallowest stage first). ``decoder.stages`` lists the stages' upsamplers deepest first.

**Skips** (``skips``): ``all`` (the U-Net: every level with a feature), ``none`` (an encoder–decoder, SegNet-like
without pooling indices: the upsamplers recreate every detail), or a list of the levels that keep theirs (``[0]``:
only the full-resolution one).

**The guide of a guided upsampler** (``fade``): in a stage that keeps its skip, the skip. In a stage without one,
``guide`` decides: ``encoder`` (default; FADE's design, which reads the encoder feature at the output resolution)
gives it that level's encoder feature anyway — or, where the encoder has none (a ResNet's stride 1; a ConvNeXt's
strides 1 and 2), the input image averaged down to that stride —
so with ``skips=none`` FADE sees encoder detail that no other upsampler gets; ``decoder`` (the fair alternative)
gives it the stage's own input, the decoder feature, repeated ×2 (nearest) to the output resolution, so it sees
nothing the others do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.base import SegmentationNetwork
from upseg.models.blocks import DoubleConv
from upseg.models.encoders import build_encoder
from upseg.models.registry import register_network
from upseg.upsample import needs_guide

GUIDES = ("encoder", "decoder")


class DecoderStage(nn.Module):
    """``up(x)`` ×2 (``up(x, guide)`` for a guided upsampler), concatenated with ``skip`` (if any), then
    :class:`DoubleConv`."""

    def __init__(self, upsampler: nn.Module, up_channels: int, skip_channels: int):
        super().__init__()
        self.up = upsampler
        self.conv = DoubleConv(up_channels + skip_channels, up_channels)

    def forward(self, x: Tensor, skip: Tensor | None, guide: Tensor | None) -> Tensor:
        x = SegmentationNetwork.upsample(self.up, x, guide)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


def kept_skips(skips: Any, available: Sequence[int], depth: int) -> set[int]:
    """The levels whose skip ``skips`` keeps: ``all`` (every level in ``available``), ``none``, or a list of them."""
    if skips == "all":
        return set(available)
    if skips == "none":
        return set()
    if (
        isinstance(skips, Sequence)
        and not isinstance(skips, str)
        and all(isinstance(level, int) and not isinstance(level, bool) for level in skips)
        and set(skips) <= set(available)
        and len(set(skips)) == len(skips)
    ):
        return set(skips)
    raise ConfigError(
        f"model.net.skips={skips!r} is not valid: it takes 'all', 'none' or a list of the encoder levels that keep "
        f"their skip, each one of {', '.join(map(str, available))} (level i is at stride 2^i, 0 the shallowest; "
        f"model.net.depth={depth})"
    )


@register_network("unet")
class UNet(SegmentationNetwork):
    """U-Net with a plain (default), torchvision ResNet or timm encoder; see the module docstring."""

    tiny_options = {"depth": 2, "base_width": 4}

    def __init__(
        self,
        num_classes: int,
        decoder: Mapping[str, Any],
        in_channels: int = 3,
        depth: int = 4,
        base_width: int = 32,
        encoder: str = "plain",
        encoder_weights: str | None = None,
        decoder_channels: Sequence[int] | None = None,
        skips: str | Sequence[int] = "all",
        guide: Literal["encoder", "decoder"] = "encoder",
    ) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"model.net.depth must be a positive int (number of down/up stages), got {depth!r}")
        if not isinstance(base_width, int) or base_width < 1:
            raise ConfigError(f"model.net.base_width must be a positive int, got {base_width!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
        if guide not in GUIDES:
            raise ConfigError(f"model.net.guide must be one of {', '.join(GUIDES)}, got {guide!r}")
        self.encoder = build_encoder(encoder, in_channels, depth, base_width, encoder_weights, range(2, depth + 1))
        encoder_channels = self.encoder.channels
        if decoder_channels is None:
            decoder_channels = encoder_channels[:depth] if encoder == "plain" else [16 * 2**i for i in range(depth)]
        elif len(decoder_channels) != depth or any(not isinstance(c, int) or c < 1 for c in decoder_channels):
            raise ConfigError(
                f"model.net.decoder_channels must be {depth} positive ints (one per decoder stage, the shallowest "
                f"first; model.net.depth={depth}), got {list(decoder_channels)}"
            )
        decoder_channels = list(decoder_channels)
        self.depth = depth
        self.in_channels = in_channels
        self.size_multiple = 2**depth  # every stage halves the resolution
        self.kept = kept_skips(skips, [i for i in range(depth) if encoder_channels[i]], depth)
        below = [*decoder_channels[1:], encoder_channels[depth]]  # channels entering stage i from the level below
        # Where each stage's guide comes from: its skip, the encoder feature, the image, or the decoder feature.
        self.guide_sources = [
            "skip" if i in self.kept else guide if guide == "decoder" else "encoder" if encoder_channels[i] else "image"
            for i in range(depth)
        ]
        guide_channels = [
            {"skip": encoder_channels[i], "encoder": encoder_channels[i], "image": in_channels, "decoder": below[i]}[
                source
            ]
            for i, source in enumerate(self.guide_sources)
        ]
        stages = self.stage_decoders(decoder, [2**i for i in reversed(range(depth))])[::-1]  # shallowest first here
        self.decoder = nn.ModuleList(
            DecoderStage(
                self.decoder_upsampler(
                    stages[i], below[i], decoder_channels[i], 2, guide_channels[i], into_stride=2**i
                ),
                decoder_channels[i],
                encoder_channels[i] if i in self.kept else 0,
            )
            for i in range(depth)
        )
        self.head = nn.Conv2d(decoder_channels[0], num_classes, 1)
        self.checkerboard_period = 2  # the last upsampler's factor: its artifacts repeat every 2 output pixels

    def stage_guide(self, level: int, features: list[Tensor | None], image: Tensor, below: Tensor) -> Tensor | None:
        """The guide of decoder stage ``level`` (None when its upsampler takes none); see the module docstring."""
        if not needs_guide(self.decoder[level].up):
            return None
        source = self.guide_sources[level]
        if source == "image":  # no encoder feature here: the image, averaged down to the stage's stride
            return image if level == 0 else F.avg_pool2d(image, 2**level)
        if source == "decoder":
            return F.interpolate(below, scale_factor=2, mode="nearest")
        return features[level]

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self.pad_input(x)
        features = self.encoder(x)
        y = features[self.depth]
        for i in reversed(range(self.depth)):
            skip = features[i] if i in self.kept else None
            y = self.decoder[i](y, skip, self.stage_guide(i, features, x, y))
        return self.crop_padding(self.head(y), padding)
