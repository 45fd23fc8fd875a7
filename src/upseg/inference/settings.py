"""How a network is run on whole images: the ``inference`` config node (``configs/inference/default.yaml``).

``mode`` is ``whole`` (the network sees the whole image at once) or ``slide`` (windows of ``crop`` pixels every
``stride`` pixels, their logits blended, :mod:`upseg.inference.windows`); ``flip`` adds the horizontal mirror and
``scales`` resized copies (:mod:`upseg.inference.infer`). Every value is checked when the settings are made, each
mistake one :class:`~upseg.errors.ConfigError` naming its ``inference.<key>``; :meth:`InferenceSettings.check_for`
adds the network's rule that a window's sides are multiples of its ``size_multiple``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from upseg.errors import ConfigError

MODES = ("whole", "slide")
BLENDS = ("uniform", "gaussian")
MAX_CROP = 16384
"""The largest window side: a window that large is whole-image inference (and a typo of a smaller one)."""


def _pair(value: int | Sequence[int], key: str) -> tuple[int, int]:
    """``value`` as ``(height, width)``: one int for both sides, or two."""
    values = [value] if isinstance(value, int) else list(value) if isinstance(value, Sequence) else [value]
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{key} must be an int or [height, width] ints, got {value!r}")
    return values[0], values[1]


@dataclass(frozen=True)
class InferenceSettings:
    """See the module docstring. ``crop`` and ``stride`` are one int for both sides or ``[height, width]``;
    ``stride=None`` is half the crop (windows overlap by half); ``batch_size`` windows go through the network at
    once."""

    mode: str = "whole"
    crop: int | Sequence[int] = 512
    stride: int | Sequence[int] | None = None
    flip: bool = False
    scales: Sequence[float] = (1.0,)
    blend: str = "uniform"
    batch_size: int = 4
    crop_size: tuple[int, int] = field(init=False)
    stride_size: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"inference.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.blend not in BLENDS:
            raise ConfigError(f"inference.blend must be one of {', '.join(BLENDS)}, got {self.blend!r}")
        crop = _pair(self.crop, "inference.crop")
        if not all(0 < side <= MAX_CROP for side in crop):
            raise ConfigError(
                f"inference.crop={self.crop!r} must be between 1 and {MAX_CROP} pixels a side "
                "(a window that large is whole-image inference: inference.mode=whole)"
            )
        stride = (
            tuple(max(1, side // 2) for side in crop) if self.stride is None else _pair(self.stride, "inference.stride")
        )
        if not all(0 < step <= side for step, side in zip(stride, crop, strict=True)):
            raise ConfigError(
                f"inference.stride={self.stride!r} must be positive and at most inference.crop={self.crop!r} "
                "(a larger step would leave pixels between windows unpredicted)"
            )
        scales = [self.scales] if isinstance(self.scales, int | float) else list(self.scales)
        if not scales or not all(isinstance(s, int | float) and not isinstance(s, bool) and s > 0 for s in scales):
            raise ConfigError(
                "inference.scales must be a list of positive numbers, e.g. [1.0] or [0.75, 1.0, 1.25], "
                f"got {self.scales!r}"
            )
        if not isinstance(self.flip, bool):
            raise ConfigError(f"inference.flip must be true or false, got {self.flip!r}")
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ConfigError(
                f"inference.batch_size must be a positive int (windows per forward pass), got {self.batch_size!r}"
            )
        object.__setattr__(self, "crop_size", crop)
        object.__setattr__(self, "stride_size", stride)
        object.__setattr__(self, "scales", tuple(float(s) for s in scales))

    def check_for(self, size_multiple: int) -> None:
        """In ``slide`` mode, one :class:`ConfigError` when a side of ``crop`` is not a multiple of the network's
        ``size_multiple`` (it would pad every window inside, unlike a training crop)."""
        if self.mode != "slide" or all(side % size_multiple == 0 for side in self.crop_size):
            return
        near = sorted(
            {max(size_multiple, side // size_multiple * size_multiple) for side in self.crop_size}
            | {-(-side // size_multiple) * size_multiple for side in self.crop_size}
        )
        raise ConfigError(
            f"inference.crop={self.crop!r} is not a multiple of {size_multiple}, the size multiple of this network "
            f"(it pads its inputs to multiples of {size_multiple}); use e.g. {' or '.join(map(str, near))}"
        )

    def describe(self) -> str:
        """One line: ``whole`` or ``slide 512x512 every 256x256 (uniform)``, and ``+ flip``, ``scales 0.75, 1``."""
        text = self.mode
        if self.mode == "slide":
            (ch, cw), (sh, sw) = self.crop_size, self.stride_size
            text += f" {ch}x{cw} every {sh}x{sw} ({self.blend})"
        if self.flip:
            text += " + flip"
        if self.scales != (1.0,):
            text += " at scales " + ", ".join(f"{s:g}" for s in self.scales)
        return text
