"""Encoders from timm (``model.net.encoder=timm:<name>``; the optional extra ``[timm]``): any timm model that
builds with ``features_only=True`` and whose features lie at power-of-two strides.

``timm.create_model(name, features_only=True, out_indices=…)`` gives a network that returns one feature map per
chosen stage; its ``feature_info`` gives each stage's stride (``reduction``) and width (``channels``). The stage at
stride ``2^i`` becomes level ``i`` of the encoder contract (:mod:`upseg.models.encoders`): ``forward`` returns the
maps of levels ``0 … depth``, ``None`` where the model has none (most have no stride-1 map; ConvNeXt and PVT-v2
start at stride 4), and ``channels[i]`` is their width (0 for none). Only stages up to stride ``2^depth`` are asked
for, so timm builds nothing deeper (no unused parameters). The strides are read first from a copy built on the
``meta`` device, which allocates no memory.

``encoder_weights``: null (random initialisation) or ``pretrained`` (timm's default pretrained weights, downloaded
once from the Hugging Face hub and cached). A name timm does not know, a model without the levels the network needs,
a missing timm and weights that cannot be downloaded are each one :class:`~upseg.errors.ConfigError`.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from upseg.errors import ConfigError, first_line

PRETRAINED = "pretrained"
LIST_NAMES = "python -c \"import timm; print(timm.list_models('convnext*'))\""  # how to find valid names


def import_timm(encoder: str) -> Any:
    """timm, or one error saying how to install it."""
    if importlib.util.find_spec("timm") is None:
        raise ConfigError(
            f'model.net.encoder={encoder} needs timm, which is not installed; install it with: pip install -e ".[timm]"'
        )
    import timm

    return timm


def feature_levels(timm: Any, name: str) -> tuple[dict[int, int], list[int], list[int]]:
    """``{level: stage index}`` of the stages of timm model ``name`` at power-of-two strides, and every stage's stride
    and width."""
    key = f"model.net.encoder=timm:{name}"
    try:
        with torch.device("meta"):
            probe = timm.create_model(name, pretrained=False, features_only=True)
    except RuntimeError as error:
        reason = first_line(error)
        if "Unknown model" in reason:
            raise ConfigError(f"{key}: timm has no model {name!r}; list valid names with {LIST_NAMES}") from None
        raise ConfigError(
            f"{key}: timm cannot give its features ({reason}); list valid names with {LIST_NAMES}"
        ) from None
    strides, widths = list(probe.feature_info.reduction()), list(probe.feature_info.channels())
    levels: dict[int, int] = {}
    for index, stride in enumerate(strides):
        level = round(math.log2(stride)) if stride > 0 else -1
        if 2**level == stride:
            levels[level] = index  # the last stage at a stride is its output
    return levels, strides, widths


class TimmEncoder(nn.Module):
    """timm model ``name`` as an encoder with levels ``0 … depth``; ``required`` levels must exist."""

    def __init__(
        self, name: str, in_channels: int, depth: int, weights: str | None = None, required: Sequence[int] = ()
    ) -> None:
        super().__init__()
        key = f"model.net.encoder=timm:{name}"
        timm = import_timm(f"timm:{name}")
        if weights not in (None, PRETRAINED):
            raise ConfigError(
                f"model.net.encoder_weights={weights!r} is not accepted for a timm encoder: it takes null (random "
                f"initialisation) or {PRETRAINED!r} (timm's default weights)"
            )
        levels, strides, widths = feature_levels(timm, name)
        missing = [level for level in (*required, depth) if level not in levels]
        if missing:
            raise ConfigError(
                f"{key} has features at strides {', '.join(map(str, strides))}, not at stride "
                f"{', '.join(str(2**level) for level in sorted(set(missing)))}, which this network needs "
                f"(model.net.depth={depth}); choose a model with a feature pyramid (strides 4, 8, 16, 32: ResNets, "
                f"ConvNeXts, MobileNets, PVT-v2, …); list valid names with {LIST_NAMES}"
            )
        used = sorted(level for level in levels if level <= depth)
        try:
            self.model = timm.create_model(
                name,
                pretrained=weights == PRETRAINED,
                features_only=True,
                out_indices=[levels[level] for level in used],
                in_chans=in_channels,
            )
        except (OSError, RuntimeError) as error:  # no network, no cache, a hub error
            if weights != PRETRAINED:
                raise
            raise ConfigError(
                f"model.net.encoder_weights=pretrained: timm could not fetch the weights of {name} "
                f"({first_line(error)}); connect to the internet once (timm caches them), or train from random "
                "weights with model.net.encoder_weights=null"
            ) from None
        self.levels = used
        self.channels = [widths[levels[level]] if level in used else 0 for level in range(depth + 1)]

    def forward(self, x: Tensor) -> list[Tensor | None]:
        features: list[Tensor | None] = [None] * len(self.channels)
        for level, feature in zip(self.levels, self.model(x), strict=True):
            features[level] = feature
        return features
