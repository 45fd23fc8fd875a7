"""What a model needs to know of its data to predict on new images, kept in its checkpoints: :class:`DataSpec`.

- ``mean``, ``std``: the normalisation ``(x/255 − mean) / std`` per channel (albumentations' ``Normalize``);
- ``eval_size``: the evaluation size rule — ``None`` full resolution, an int the longer side, ``[H, W]`` a fixed size
  (:func:`upseg.data.transforms.eval_transform`);
- ``channels`` and ``conversion``: the images the network takes and how any image becomes one. ``"rgb"`` (the only
  conversion the datamodules make): 3 channels, greyscale repeated over them, an alpha channel dropped (not
  composited), 16-bit values scaled by 255/65535 (:func:`upseg.data.samples.rgb_array`);
- ``palette``: ``num_classes×3`` uint8 class colours, or ``None`` (the VOC colour map is used,
  :func:`upseg.data.palette.label_colormap`).

Class names and ``ignore_index`` are the module's own hyperparameters. A checkpoint written before specs were kept
gets :meth:`DataSpec.of_older_run`: ``mean``, ``std`` and ``eval_size`` of the data config recorded in it (their
defaults where it records none), ``"rgb"`` with 3 channels (all the datamodules ever made) and no palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import numpy as np

from upseg.data.palette import label_colormap
from upseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from upseg.errors import UpsegError

CONVERSIONS = ("rgb",)


@dataclass(frozen=True)
class DataSpec:
    """See the module docstring."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    eval_size: int | tuple[int, int] | None = None
    channels: int = 3
    conversion: str = "rgb"
    palette: tuple[tuple[int, int, int], ...] | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DataSpec:
        """The spec a checkpoint keeps (:meth:`as_dict`); one :class:`UpsegError` for one this version cannot use."""
        if unknown := sorted(set(values) - set(cls.__dataclass_fields__)):
            raise UpsegError(f"the checkpoint's data_spec has keys this upseg does not know: {', '.join(unknown)}")
        if values.get("conversion", "rgb") not in CONVERSIONS:
            raise UpsegError(
                f"the checkpoint's images are converted by {values['conversion']!r}, which this upseg does not know "
                f"(it knows {', '.join(CONVERSIONS)})"
            )
        size = values.get("eval_size")
        palette = values.get("palette")
        return cls(
            mean=tuple(float(v) for v in values.get("mean", IMAGENET_MEAN)),
            std=tuple(float(v) for v in values.get("std", IMAGENET_STD)),
            eval_size=tuple(size) if isinstance(size, Sequence) else size,  # type: ignore[arg-type]
            channels=int(values.get("channels", 3)),
            conversion=str(values.get("conversion", "rgb")),
            palette=tuple(tuple(int(c) for c in colour) for colour in palette) if palette is not None else None,  # type: ignore[misc]
        )

    @classmethod
    def of_older_run(cls, data_config: Mapping[str, Any] | None) -> DataSpec:
        """The spec of a checkpoint written before specs were kept (see the module docstring)."""
        data_config = data_config or {}
        known = {key: data_config[key] for key in ("mean", "std", "eval_size") if data_config.get(key) is not None}
        return cls.from_dict(known)

    def as_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, as a checkpoint keeps them."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "eval_size": list(self.eval_size) if isinstance(self.eval_size, tuple) else self.eval_size,
            "channels": self.channels,
            "conversion": self.conversion,
            "palette": [list(colour) for colour in self.palette] if self.palette is not None else None,
        }

    def transform(self) -> A.Compose:
        """The evaluation transform: ``H×W×3`` uint8 → ``3×H'×W'`` float32, as the datamodule evaluates."""
        return eval_transform(self.eval_size, self.mean, self.std)

    def colours(self, num_classes: int) -> np.ndarray:
        """``num_classes×3`` uint8: the palette, or the VOC colour map where there is none."""
        if self.palette is not None and len(self.palette) >= num_classes:
            return np.asarray(self.palette[:num_classes], dtype=np.uint8)
        return label_colormap(num_classes)
