"""U-Net (Ronneberger et al., 2015) whose decoder upsampler is chosen by name.

``N×C_in×H×W`` → logits ``N×num_classes×H×W`` for any ``H, W``: the input is zero-padded to a multiple of ``2^depth``
(its ``size_multiple``) and the logits cropped back. Decoder stage ``i`` (from the deepest up): upsampler ×2 from
``channels[i+1]`` to ``decoder_channels[i]`` → concatenate the stride-``2^i`` skip → two conv-BN-ReLU. Decoder widths
default to the encoder's widths (plain) or ``16·2^i`` (ResNet) and can be set with ``decoder_channels`` (shallowest
stage first). An upsampler that takes a guide (``fade``) gets that skip as its guide, or the (padded) input image at
stride 1 when the encoder has no feature there (the ResNet encoders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.base import SegmentationNetwork
from upseg.models.blocks import DoubleConv
from upseg.models.encoders import PlainEncoder, ResNetEncoder
from upseg.models.registry import register_network


class DecoderStage(nn.Module):
    """``up(x)`` ×2 (``up(x, guide)`` for a guided upsampler), concatenated with ``skip`` (if any), then
    :class:`DoubleConv`."""

    def __init__(self, upsampler: nn.Module, up_channels: int, skip_channels: int):
        super().__init__()
        self.up = upsampler
        self.conv = DoubleConv(up_channels + skip_channels, up_channels)

    def forward(self, x: Tensor, skip: Tensor | None, guide: Tensor) -> Tensor:
        x = SegmentationNetwork.upsample(self.up, x, guide)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


@register_network("unet")
class UNet(SegmentationNetwork):
    """U-Net with a plain (default) or torchvision ResNet encoder; see the module docstring for shapes."""

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
    ) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"model.net.depth must be a positive int (number of down/up stages), got {depth!r}")
        if not isinstance(base_width, int) or base_width < 1:
            raise ConfigError(f"model.net.base_width must be a positive int, got {base_width!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
        if encoder == "plain":
            if encoder_weights is not None:
                raise ConfigError(
                    "model.net.encoder_weights needs a torchvision encoder (model.net.encoder=resnet18|34|50)"
                )
            self.encoder: nn.Module = PlainEncoder(in_channels, base_width, depth)
            default_widths = self.encoder.channels[:depth]
        else:
            self.encoder = ResNetEncoder(encoder, in_channels, depth, encoder_weights)
            default_widths = [16 * 2**i for i in range(depth)]
        if decoder_channels is None:
            decoder_channels = default_widths
        elif len(decoder_channels) != depth or any(not isinstance(c, int) or c < 1 for c in decoder_channels):
            raise ConfigError(
                f"model.net.decoder_channels must be {depth} positive ints (one per decoder stage, the shallowest "
                f"first; model.net.depth={depth}), got {list(decoder_channels)}"
            )
        decoder_channels = list(decoder_channels)
        skip_channels = self.encoder.channels
        self.depth = depth
        self.in_channels = in_channels
        self.size_multiple = 2**depth  # every stage halves the resolution
        below = [*decoder_channels[1:], skip_channels[depth]]  # channels entering stage i from the level below
        guide_channels = [channels or in_channels for channels in skip_channels]  # the image where no skip exists
        self.decoder = nn.ModuleList(
            DecoderStage(
                self.decoder_upsampler(decoder, below[i], decoder_channels[i], 2, guide_channels[i]),
                decoder_channels[i],
                skip_channels[i],
            )
            for i in range(depth)
        )
        self.head = nn.Conv2d(decoder_channels[0], num_classes, 1)
        self.checkerboard_period = 2  # the last upsampler's factor: its artifacts repeat every 2 output pixels

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self.pad_input(x)
        features = self.encoder(x)
        y = features[self.depth]
        for i in reversed(range(self.depth)):
            skip = features[i]
            y = self.decoder[i](y, skip, guide=x if skip is None else skip)
        return self.crop_padding(self.head(y), padding)
