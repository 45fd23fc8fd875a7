"""FCN-32s/16s/8s (Long, Shelhamer & Darrell, 2015) on a torchvision ResNet or VGG, upsamplers from the builder.

``N×3×H×W`` → logits ``N×num_classes×H×W`` for any ``H, W`` (padded to a multiple of 32, cropped back).
Class scores at stride 32 (a conv head) are upsampled ×2 and added to 1×1 scores of the stride-16 features (16s, 8s),
again ×2 and added to stride-8 scores (8s), then upsampled to full resolution (×32, ×16 or ×8). Every upsampling is a
decoder upsampler; one that takes a guide (``fade``) gets the backbone feature at its output stride (pool4, pool3),
and the input image for the final upsampling to full resolution. ``transpose`` and ``direct`` start as bilinear
interpolation, as in the paper, unless the decoder config sets ``init`` itself. The skip score layers start at zero,
so training begins from FCN-32s's prediction. Stages, deepest first (``decoder.stages``): FCN-8s the ×2 into stride
16, the ×2 into stride 8, the final ×8 into stride 1; FCN-16s the ×2 into 16 and the ×16; FCN-32s the ×32 alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.base import SegmentationNetwork
from upseg.models.blocks import ConvBNReLU
from upseg.models.encoders import FCNBackbone
from upseg.models.registry import register_network

BILINEAR_INIT_UPSAMPLERS = ("transpose", "direct")
IMAGE_CHANNELS = 3  # the torchvision backbones take RGB


@register_network("fcn")
class FCN(SegmentationNetwork):
    """FCN with ``variant`` ``"8s"`` (default), ``"16s"`` or ``"32s"``; see the module docstring for shapes."""

    tiny_options = {"head_channels": 8}

    def __init__(
        self,
        num_classes: int,
        decoder: Mapping[str, Any],
        variant: str = "8s",
        backbone: str = "resnet18",
        backbone_weights: str | None = None,
        head_channels: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if variant not in ("8s", "16s", "32s"):
            raise ConfigError(f"model.net.variant must be '8s', '16s' or '32s', got {variant!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
        self.backbone = FCNBackbone(backbone, backbone_weights)
        c8, c16, c32 = self.backbone.channels
        self.head = nn.Sequential(
            ConvBNReLU(c32, head_channels), nn.Dropout2d(dropout), nn.Conv2d(head_channels, num_classes, 1)
        )
        self.skips = {"8s": 2, "16s": 1, "32s": 0}[variant]
        self.score_skip = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in (c16, c8)[: self.skips])
        for layer in self.score_skip:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        final_scale = 32 // 2**self.skips
        stages = [
            stage.with_defaults(init="bilinear") if stage.name in BILINEAR_INIT_UPSAMPLERS else stage
            for stage in self.stage_decoders(decoder, [16, 8][: self.skips] + [1])
        ]
        self.up_skip = nn.ModuleList(
            self.decoder_upsampler(stage, num_classes, num_classes, 2, channels, into_stride=stride)
            for stage, channels, stride in zip(stages, (c16, c8)[: self.skips], (16, 8), strict=False)
        )
        self.up_final = self.decoder_upsampler(stages[-1], num_classes, num_classes, final_scale, IMAGE_CHANNELS, 1)
        self.variant = variant
        self.in_channels = IMAGE_CHANNELS
        self.size_multiple = 32  # the backbone's output stride
        self.checkerboard_period = 32 // 2**self.skips  # the final upsampling factor

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self.pad_input(x)
        f8, f16, f32 = self.backbone(x)
        scores = self.head(f32)
        for up, score, features in zip(self.up_skip, self.score_skip, (f16, f8), strict=False):
            scores = self.upsample(up, scores, features) + score(features)
        return self.crop_padding(self.upsample(self.up_final, scores, x), padding)
