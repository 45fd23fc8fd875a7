"""What every segmentation network gives, and how it asks for its upsamplers.

A network is a :class:`SegmentationNetwork`, built as ``Network(num_classes, decoder, **options)`` with ``decoder``
the decoder config ``{name, options, stages}``. It maps images ``N×C_in×H×W`` → logits ``N×num_classes×H×W`` for ANY
``H, W`` and states

- ``in_channels``: ``C_in``, the channels of the images it takes;
- ``size_multiple``: the multiple its layers need ``H`` and ``W`` to be (U-Net and the pyramid head ``2^depth``, FCN
  32). ``forward`` zero-pads the input at the bottom and right up to it and crops the logits back
  (:meth:`SegmentationNetwork.pad_input`, :meth:`SegmentationNetwork.crop_padding`), so an input whose sides are
  multiples of it is never padded: sliding-window inference takes its windows in such sizes;
- ``checkerboard_period``: the period, in output pixels, of the artifacts its last learned upsampling could leave
  (the factor of that upsampling), which the checkerboard score measures.

While ``torch.export`` traces (and so ONNX export), the padding is applied even when it is zero and the crop is a
negative padding, so that the traced sizes stay symbolic: ``P = m·⌈H/m⌉`` is provably a multiple of ``m`` and
``P − (P − H) = H``, where a conditional pad and a slice ``[:H]`` would make the export guard on ``H mod m``.

**Stages.** A network's upsamplings are grouped in *stages*: a stage is every upsampling INTO one output stride, and
stages are counted **deepest first**, in the order the decoder applies them (U-Net depth 4: into strides 8, 4, 2, 1;
FCN-8s: into 16, 8, then the final ×8 into 1). ``decoder.stages`` — null, or one entry per stage — chooses an
upsampler per stage (:meth:`SegmentationNetwork.stage_decoders`): an entry is a registered name, which gets
``decoder.options`` when it is ``decoder.name`` and its own defaults otherwise, or a mapping ``{name, options}``.
With ``decoder.stages`` null every stage uses ``decoder.name`` with ``decoder.options``. :func:`decoder_label` is
how runs are named: the name, or the stages' names joined by commas (``bilinear,bilinear,carafe,carafe``).

Upsamplers come only from the one builder, through :meth:`SegmentationNetwork.decoder_upsampler`; a guided
upsampler (``fade``) gets, as its guide, the feature the network passes to :meth:`SegmentationNetwork.upsample`
(each network's docstring says which), and its channel count as the option ``guide_channels``, which the network
fills in. An option that does not fit a stage (DySample ``groups`` not dividing that stage's channels) is one
:class:`~upseg.errors.ConfigError` naming the key, the stage and the valid values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.blocks import pad_bottom_right
from upseg.upsample import UPSAMPLERS, build_upsampler, needs_guide


@dataclass(frozen=True)
class StageDecoder:
    """The upsampler chosen for one stage: its registered ``name`` and ``options``, and the config ``key`` that chose
    it (``decoder``, or ``decoder.stages[i]``), which errors name."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    key: str = "decoder"

    def with_defaults(self, **defaults: Any) -> StageDecoder:
        """The same upsampler with ``defaults`` for the options it does not set."""
        return StageDecoder(self.name, {**defaults, **self.options}, self.key)


def stage_names(decoder: Mapping[str, Any]) -> list[str] | None:
    """The names of ``decoder.stages`` (deepest first), or None when every stage uses ``decoder.name``."""
    stages = decoder.get("stages")
    if stages is None:
        return None
    return [entry.get("name") if isinstance(entry, Mapping) else entry for entry in stages]


def decoder_label(decoder: Mapping[str, Any]) -> str:
    """A run's decoder as comparisons and summaries name it: ``decoder.name``, or the stages' names joined by commas."""
    names = stage_names(decoder)
    return ",".join(map(str, names)) if names is not None else str(decoder.get("name"))


class SegmentationNetwork(nn.Module):
    """Base of every registered network (see the module docstring).

    ``tiny_options``: the smallest options that build a working network, for tests and quick checks. A network
    sets ``in_channels`` and ``size_multiple`` in ``__init__`` when they are not the defaults (3, 1).
    """

    checkerboard_period: int = 2
    in_channels: int = 3
    size_multiple: int = 1
    tiny_options: ClassVar[dict[str, Any]] = {}

    def forward(self, images: Tensor) -> Tensor:  # pragma: no cover - every network defines it
        raise NotImplementedError

    def pad_input(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """``N×C×H×W`` zero-padded at the bottom and right to multiples of ``size_multiple``, and the padding
        ``(rows, columns)`` added. After normalisation zero is the dataset mean: a neutral border."""
        return pad_bottom_right(images, self.size_multiple)

    @staticmethod
    def crop_padding(logits: Tensor, padding: tuple[int, int]) -> Tensor:
        """``logits`` without the ``(rows, columns)`` that :meth:`pad_input` added."""
        rows, columns = padding
        if torch.compiler.is_exporting():
            return F.pad(logits, (0, -columns, 0, -rows))
        return logits[..., : logits.shape[-2] - rows, : logits.shape[-1] - columns]

    @staticmethod
    def stage_decoders(decoder: Mapping[str, Any], strides: Sequence[int]) -> list[StageDecoder]:
        """One :class:`StageDecoder` per stage, deepest first; ``strides``: the output stride of each stage, in that
        order (what a wrong ``decoder.stages`` is told)."""
        if "name" not in decoder:
            raise ConfigError(f"the decoder config needs a `name` (e.g. decoder=transpose), got {dict(decoder)}")
        options = dict(decoder.get("options") or {})
        stages = decoder.get("stages")
        valid = ", ".join(sorted(UPSAMPLERS))
        if stages is None:
            if decoder["name"] not in UPSAMPLERS:
                raise ConfigError(f"decoder: unknown upsampler {decoder['name']!r}; valid names: {valid}")
            return [StageDecoder(decoder["name"], options) for _ in strides]
        into = ", ".join(map(str, strides))
        if isinstance(stages, str | Mapping) or not isinstance(stages, Sequence) or len(stages) != len(strides):
            count = f" ({len(stages)})" if isinstance(stages, Sequence) and not isinstance(stages, str) else ""
            raise ConfigError(
                f"decoder.stages must list {len(strides)} upsamplers, one per stage, deepest first (the upsamplings "
                f"into strides {into}), got {list(stages) if count else stages!r}{count}; each entry one of: {valid}"
            )
        chosen = []
        for index, entry in enumerate(stages):
            key = f"decoder.stages[{index}]"
            if isinstance(entry, Mapping):
                name, own = entry.get("name"), dict(entry.get("options") or {})
                unknown = sorted(set(entry) - {"name", "options"})
                if unknown:
                    raise ConfigError(f"{key} takes `name` and `options`, not {', '.join(unknown)}")
            else:
                name, own = entry, (options if entry == decoder["name"] else {})
            if name not in UPSAMPLERS:
                raise ConfigError(f"{key}={name!r} (into stride {strides[index]}) is not an upsampler; valid: {valid}")
            chosen.append(StageDecoder(name, own, key))
        return chosen

    @staticmethod
    def decoder_upsampler(
        decoder: StageDecoder | Mapping[str, Any],
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        guide_channels: int,
        into_stride: int | None = None,
    ) -> nn.Module:
        """The upsampler a stage (or a decoder config ``{name: ..., options: {...}}``, used for every stage) asks for,
        through the one builder; ``guide_channels`` (the channels of the feature the network will pass as the guide)
        becomes the option of that name for the upsamplers that take a guide. ``into_stride``, the output stride,
        only serves the error message of an option that does not fit."""
        if not isinstance(decoder, StageDecoder):
            if "name" not in decoder:
                raise ConfigError(f"the decoder config needs a `name` (e.g. decoder=transpose), got {dict(decoder)}")
            decoder = StageDecoder(decoder["name"], dict(decoder.get("options") or {}))
        options = dict(decoder.options)
        try:
            if needs_guide(decoder.name):
                if options.get("guide_channels") is not None:
                    raise ConfigError(
                        f"{decoder.key}.options.guide_channels is set by the model (the channels of its encoder "
                        "feature); remove it from the decoder config"
                    )
                options["guide_channels"] = guide_channels
            return build_upsampler(decoder.name, in_channels, out_channels, scale_factor, **options)
        except ConfigError:
            raise
        except ValueError as error:
            where = f" into stride {into_stride}" if into_stride is not None else ""
            raise ConfigError(
                f"{decoder.key}: {error} (the ×{scale_factor} upsampling{where}, {in_channels} → {out_channels} "
                f"channels, by {decoder.name})"
            ) from error

    @staticmethod
    def upsample(upsampler: nn.Module, x: Tensor, guide: Tensor | None) -> Tensor:
        """``upsampler(x, guide)`` for an upsampler that takes a guide, else ``upsampler(x)``."""
        return upsampler(x, guide) if needs_guide(upsampler) else upsampler(x)
