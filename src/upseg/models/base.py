"""What every segmentation network gives, and how it asks for its upsamplers.

A network is a :class:`SegmentationNetwork`, built as ``Network(num_classes, decoder, **options)`` with ``decoder``
the decoder config ``{name, options}``. It maps images ``N×C_in×H×W`` → logits ``N×num_classes×H×W`` for ANY ``H, W``
and states

- ``in_channels``: ``C_in``, the channels of the images it takes;
- ``size_multiple``: the multiple its layers need ``H`` and ``W`` to be (U-Net ``2^depth``, FCN 32). ``forward``
  zero-pads the input at the bottom and right up to it and crops the logits back
  (:meth:`SegmentationNetwork.pad_input`, :meth:`SegmentationNetwork.crop_padding`), so an input whose sides are
  multiples of it is never padded: sliding-window inference takes its windows in such sizes;
- ``checkerboard_period``: the period, in output pixels, of the artifacts its last learned upsampling could leave
  (the factor of that upsampling), which the checkerboard score measures.

While ``torch.export`` traces (and so ONNX export), the padding is applied even when it is zero and the crop is a
negative padding, so that the traced sizes stay symbolic: ``P = m·⌈H/m⌉`` is provably a multiple of ``m`` and
``P − (P − H) = H``, where a conditional pad and a slice ``[:H]`` would make the export guard on ``H mod m``.

Upsamplers come only from the one builder, through :meth:`SegmentationNetwork.decoder_upsampler`; a guided
upsampler (``fade``) gets, as its guide, the feature the network passes to :meth:`SegmentationNetwork.upsample`
— the encoder feature at the output resolution (a U-Net skip, an FCN pool feature), or the image where the encoder
has none — and its channel count as the option ``guide_channels``, which the network fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.errors import ConfigError
from upseg.models.blocks import pad_bottom_right
from upseg.upsample import build_upsampler, needs_guide


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
