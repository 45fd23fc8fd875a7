"""A feature-pyramid head: SegFormer's all-MLP decoder (Xie et al., "SegFormer: Simple and Efficient Design for
Semantic Segmentation with Transformers", NeurIPS 2021), its upsamplings chosen by name.

``N×C_in×H×W`` → logits ``N×num_classes×H×W`` for any ``H, W`` (padded to a multiple of ``2^depth``, cropped back).
The encoder (:func:`~upseg.models.encoders.build_encoder`: ``plain``, a ResNet or ``timm:<name>``) gives levels
``l = 2 … depth`` at strides ``4 … 2^depth`` (``depth=5``: 4, 8, 16, 32, the papers' pyramid). Each level is embedded
by a 1×1 convolution to ``channels`` (SegFormer's per-level "MLP"), ``e_l``, and brought to stride 4 in ×2 steps by
the chosen upsampler (level ``l`` passes through ``l − 2`` of them: 6 upsamplers for 4 levels); the levels are
concatenated (``L·channels``), fused by a 1×1 conv-BN-ReLU to ``channels``, dropped out and classified by a 1×1
convolution at stride 4. The class scores then go to full resolution ×4 (``final_upsample``): by bilinear
interpolation (``bilinear``, SegFormer's), or by the chosen upsampler (``decoder``, as FCN does; ``transpose`` and
``direct`` then start bilinear).

SegFormer resizes every level to stride 4 in one bilinear step; FADE's SegFormer experiments (the authors' code)
replace it by cascaded ×2 upsamplers, each guided upsampler reading the embedded level feature ``e_k`` at its output
stride ``2^k``, and upseg does the same (the ×2 steps also keep CARAFE's and FADE's kernels at the scale they were
designed for). For the final ×4 a guided upsampler reads the input image. The only high-resolution information the
head gets is ``e_2``, at stride 4: nothing at strides 2 and 1, where a U-Net concatenates its skips.

Stages (``decoder.stages``), deepest first: the ×2 upsamplings into stride ``2^(depth−1)``, …, 8, 4 — every level's
step into one stride uses the stage's upsampler, each with weights of its own — then the final ×4 into stride 1 when
``final_upsample=decoder``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.base import SegmentationNetwork
from upseg.models.blocks import ConvBNReLU
from upseg.models.encoders import build_encoder
from upseg.models.registry import register_network

FINAL_UPSAMPLES = ("bilinear", "decoder")
BILINEAR_INIT_UPSAMPLERS = ("transpose", "direct")  # on class scores, as FCN starts them
IMAGE_LEVEL = 2  # the head works at stride 2^2 = 4


@register_network("fpn")
class FPN(SegmentationNetwork):
    """SegFormer-style pyramid head on a plain, ResNet or timm encoder; see the module docstring."""

    tiny_options = {"depth": 3, "base_width": 4, "channels": 8}

    def __init__(
        self,
        num_classes: int,
        decoder: Mapping[str, Any],
        in_channels: int = 3,
        depth: int = 5,
        base_width: int = 32,
        encoder: str = "plain",
        encoder_weights: str | None = None,
        channels: int = 64,
        final_upsample: Literal["bilinear", "decoder"] = "bilinear",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < IMAGE_LEVEL + 1:
            raise ConfigError(
                f"model.net.depth must be an int of at least 3 (the pyramid spans strides 4 … 2^depth), got {depth!r}"
            )
        for key, value in (("base_width", base_width), ("channels", channels)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.net.{key} must be a positive int, got {value!r}")
        if final_upsample not in FINAL_UPSAMPLES:
            raise ConfigError(
                f"model.net.final_upsample must be one of {', '.join(FINAL_UPSAMPLES)}, got {final_upsample!r}"
            )
        if num_classes < 2:
            raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
        levels = range(IMAGE_LEVEL, depth + 1)
        self.encoder = build_encoder(encoder, in_channels, depth, base_width, encoder_weights, levels)
        self.depth = depth
        self.in_channels = in_channels
        self.size_multiple = 2**depth  # the deepest level's stride
        self.embed = nn.ModuleList(nn.Conv2d(self.encoder.channels[level], channels, 1) for level in levels)
        strides = [2**k for k in reversed(range(IMAGE_LEVEL, depth))]  # the ×2 steps' output strides, deepest first
        final = final_upsample == "decoder"
        stages = self.stage_decoders(decoder, strides + [1] * final)
        by_stride = dict(zip(strides, stages, strict=False))
        # up[l - 3][j]: level l's j-th ×2 step, into stride 2^(l - 1 - j)
        self.up = nn.ModuleList(
            nn.ModuleList(
                self.decoder_upsampler(by_stride[2**k], channels, channels, 2, channels, into_stride=2**k)
                for k in reversed(range(IMAGE_LEVEL, level))
            )
            for level in range(IMAGE_LEVEL + 1, depth + 1)
        )
        self.fuse = ConvBNReLU(channels * len(levels), channels, kernel_size=1)
        self.dropout = nn.Dropout2d(dropout)
        self.classify = nn.Conv2d(channels, num_classes, 1)
        self.up_final = None
        if final:
            stage = stages[-1]
            stage = stage.with_defaults(init="bilinear") if stage.name in BILINEAR_INIT_UPSAMPLERS else stage
            self.up_final = self.decoder_upsampler(stage, num_classes, num_classes, 4, in_channels, into_stride=1)
        # The finest learned upsampling: ×4 on the scores, or the ×2 into stride 4 (period 2 there, 8 output pixels).
        self.checkerboard_period = 4 if final else 8

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self.pad_input(x)
        features = self.encoder(x)
        embedded = [
            embed(features[level]) for embed, level in zip(self.embed, range(IMAGE_LEVEL, self.depth + 1), strict=True)
        ]
        at_stride_4 = [embedded[0]]
        for level, steps in zip(range(IMAGE_LEVEL + 1, self.depth + 1), self.up, strict=True):
            y = embedded[level - IMAGE_LEVEL]
            for up, k in zip(steps, reversed(range(IMAGE_LEVEL, level)), strict=True):
                y = self.upsample(up, y, embedded[k - IMAGE_LEVEL])
            at_stride_4.append(y)
        scores = self.classify(self.dropout(self.fuse(torch.cat(at_stride_4, dim=1))))
        if self.up_final is None:
            logits = F.interpolate(scores, scale_factor=4, mode="bilinear", align_corners=False)
        else:
            logits = self.upsample(self.up_final, scores, x)
        return self.crop_padding(logits, padding)
