"""What every segmentation network gives, and how it asks for its upsamplers.

A network is a :class:`SegmentationNetwork`, built as ``Network(num_classes, decoder, **options)`` with ``decoder``
the decoder config ``{name, options}``. It maps images ``N×C_in×H×W`` → logits ``N×num_classes×H×W`` for ANY ``H, W``
(padding inside to what it needs and cropping back), and states ``checkerboard_period``: the period, in output
pixels, of the artifacts its last learned upsampling could leave (the factor of that upsampling), which the
checkerboard score measures, and ``min_input_size``: its total stride, the side below which an image is mostly the
padding its deepest stage sees (the plan refuses training images smaller than that).

Upsamplers come only from the one builder, through :meth:`SegmentationNetwork.decoder_upsampler`; a guided
upsampler (``fade``) gets, as its guide, the feature the network passes to :meth:`SegmentationNetwork.upsample`
— the encoder feature at the output resolution (a U-Net skip, an FCN pool feature), or the image where the encoder
has none — and its channel count as the option ``guide_channels``, which the network fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.upsample import build_upsampler, needs_guide


class SegmentationNetwork(nn.Module):
    """Base of every registered network (see the module docstring).

    ``tiny_options``: the smallest options that build a working network, for tests and quick checks.
    """

    checkerboard_period: int = 2
    min_input_size: int = 1
    tiny_options: ClassVar[dict[str, Any]] = {}

    def forward(self, images: Tensor) -> Tensor:  # pragma: no cover - every network defines it
        raise NotImplementedError

    @staticmethod
    def decoder_upsampler(
        decoder: Mapping[str, Any], in_channels: int, out_channels: int, scale_factor: int, guide_channels: int
    ) -> nn.Module:
        """The upsampler a decoder config ``{name: ..., options: {...}}`` asks for, through the one builder;
        ``guide_channels`` (the channels of the feature the network will pass as the guide) becomes the option of
        that name for the upsamplers that take a guide."""
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

    @staticmethod
    def upsample(upsampler: nn.Module, x: Tensor, guide: Tensor) -> Tensor:
        """``upsampler(x, guide)`` for an upsampler that takes a guide, else ``upsampler(x)``."""
        return upsampler(x, guide) if needs_guide(upsampler) else upsampler(x)
