"""Encoders: each returns the list of feature maps at strides ``1, 2, 4, …, 2^depth`` (``None`` where it has none).

``channels[i]`` is the channel count of the stride-``2^i`` map, "level ``i``" (0 for ``None``). :func:`build_encoder`
is the one place that turns ``model.net.encoder`` into an encoder, for the U-Net and the pyramid head alike:
``plain`` (the U-Net's own), a torchvision ResNet (``resnet18`` …, no stride-1 level), or ``timm:<name>``
(:mod:`upseg.models.timm_encoders`, the optional extra ``[timm]``; levels where the model has features).
``encoder_weights=pretrained`` asks for the library's default pretrained weights (downloaded once).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.blocks import DoubleConv

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
VGGS = ("vgg16", "vgg16_bn")
TIMM_PREFIX = "timm:"
PRETRAINED = "pretrained"  # the library's default pretrained weights, for torchvision and timm alike


def torchvision_backbone(name: str, weights: str | None) -> nn.Module:
    """A torchvision classification network; ``weights`` goes to torchvision as is (e.g. ``"DEFAULT"``), and
    ``"pretrained"`` means its default weights."""
    try:
        return torchvision.models.get_model(name, weights="DEFAULT" if weights == PRETRAINED else weights)
    except ValueError as error:
        raise ConfigError(f"torchvision has no weights {weights!r} for {name}: {error}") from error


class PlainEncoder(nn.Module):
    """U-Net encoder: ``DoubleConv`` at full resolution, then ``depth`` × (max-pool 2 → ``DoubleConv``, width × 2)."""

    def __init__(self, in_channels: int, base_width: int, depth: int):
        super().__init__()
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.stem = DoubleConv(in_channels, widths[0])
        self.stages = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[i], widths[i + 1])) for i in range(depth)
        )
        self.channels = widths

    def forward(self, x: Tensor) -> list[Tensor | None]:
        features: list[Tensor | None] = [self.stem(x)]
        for stage in self.stages:
            features.append(stage(features[-1]))
        return features


class ResNetEncoder(nn.Module):
    """torchvision ResNet: stride 2 after the stem, then ``layer1…layer4`` at strides 4…32 (first ``depth`` used)."""

    def __init__(self, name: str, in_channels: int, depth: int, weights: str | None = None):
        super().__init__()
        if name not in RESNETS:
            raise ConfigError(f"model.net.encoder must be 'plain' or one of {', '.join(RESNETS)}, got {name!r}")
        if not 1 <= depth <= 5:
            raise ConfigError(f"model.net.depth must be between 1 and 5 for a ResNet encoder, got {depth}")
        net = torchvision_backbone(name, weights)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        layers = [nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4]
        self.stages = nn.ModuleList([self.stem, *layers][:depth])
        expansion = 4 if name in ("resnet50", "resnet101") else 1
        self.channels = [0, 64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion][: depth + 1]

    def forward(self, x: Tensor) -> list[Tensor | None]:
        features: list[Tensor | None] = [None]
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class FCNBackbone(nn.Module):
    """The stride-8, 16 and 32 feature maps of a torchvision ResNet or VGG (FCN's pool3, pool4 and pool5)."""

    def __init__(self, name: str, weights: str | None = None):
        super().__init__()
        net = torchvision_backbone(name, weights)
        if name in RESNETS:
            expansion = 4 if name in ("resnet50", "resnet101") else 1
            self.stages = nn.ModuleList(
                [
                    nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2),
                    net.layer3,
                    net.layer4,
                ]
            )
            self.channels = [128 * expansion, 256 * expansion, 512 * expansion]
        elif name in VGGS:
            pools = [i for i, layer in enumerate(net.features) if isinstance(layer, nn.MaxPool2d)]
            bounds = [0, pools[2] + 1, pools[3] + 1, pools[4] + 1]
            self.stages = nn.ModuleList(net.features[a:b] for a, b in zip(bounds, bounds[1:], strict=False))
            self.channels = [256, 512, 512]
        else:
            raise ConfigError(f"model.net.backbone must be one of {', '.join(RESNETS + VGGS)}, got {name!r}")

    def forward(self, x: Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def build_encoder(
    encoder: str, in_channels: int, depth: int, base_width: int, weights: str | None, required: Sequence[int] = ()
) -> nn.Module:
    """The encoder ``model.net.encoder`` names, with levels ``0 … depth``; ``required``: the levels the network
    cannot do without (a timm model lacking one is refused in one line)."""
    if encoder == "plain":
        if weights is not None:
            raise ConfigError(
                "model.net.encoder_weights needs a pretrained encoder (model.net.encoder=resnet18|34|50 or timm:<name>)"
            )
        return PlainEncoder(in_channels, base_width, depth)
    if encoder.startswith(TIMM_PREFIX):
        from upseg.models.timm_encoders import TimmEncoder

        return TimmEncoder(encoder.removeprefix(TIMM_PREFIX), in_channels, depth, weights, required)
    if encoder in RESNETS:
        return ResNetEncoder(encoder, in_channels, depth, weights)
    raise ConfigError(
        f"model.net.encoder must be 'plain', one of {', '.join(RESNETS)} (torchvision) or timm:<name>, got {encoder!r}"
    )
