"""Raw samples of a file-based dataset, decoded and checked one at a time as they are loaded.

:class:`CheckedSamples` wraps a dataset of ``(PIL image, mask as PIL image or array)`` pairs — a torchvision dataset
or :class:`FilePairs` — and returns ``(image H×W×3 uint8, mask H×W int64)``, the mask's raw values mapped to class
indices. Masks may be 8- or 16-bit greyscale or palette images (a palette image is read as its indices, never its
colours); an optional valid-region mask per sample (e.g. DRIVE's field of view) turns the mask's pixels outside it
into ``ignore_index``. Images of any PIL mode become RGB: greyscale is repeated over the three channels and 16-bit
images are scaled to 8 bits. A file that cannot be read, a mask whose size differs from its image's and a mask value
that is neither a class nor ``ignore_index`` each stop with a one-line :class:`~upseg.errors.DataError` that names the
file. The checks run per sample, so a large dataset is never scanned up front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from upseg.errors import ConfigError, DataError

MAX_LISTED = 8  # values or file names quoted in one message


def brief(error: BaseException, limit: int = 200) -> str:
    """``"Type: message"`` on one line, shortened: error text goes inside one-line messages."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def listing(items: Sequence[Any]) -> str:
    """The first few items, comma-separated, with how many more there are."""
    shown = ", ".join(str(item) for item in items[:MAX_LISTED])
    return shown if len(items) <= MAX_LISTED else f"{shown} and {len(items) - MAX_LISTED} more"


def image_is_readable(path: str | Path) -> bool:
    try:
        with Image.open(path) as image:
            image.convert("RGB")
    except Exception:
        return False
    return True


def rgb_array(image: Image.Image) -> np.ndarray:
    """``H×W×3`` uint8 of any PIL image: greyscale repeated over the channels, 16/32-bit values scaled to 8 bits.

    PIL's own ``convert("RGB")`` clips 16-bit values at 255, which would turn most of a 16-bit microscope or TIFF
    image white, so wide integer images are scaled by their type's range (or by their maximum when ``I`` holds more).
    """
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) <= 65535 else values.max()
        grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def mask_array(mask: Any) -> np.ndarray:
    """The raw values of a mask as an integer array: palette images as their indices, 16-bit ones as uint16."""
    values = np.asarray(mask)  # a lazily opened PIL mask is decoded here; mode P gives indices, I;16 uint16
    if values.dtype == bool:  # PIL mode "1" (bilevel TIFF/BMP): 0 and 1
        values = values.astype(np.uint8)
    return values


def relabel(
    mask: np.ndarray, mapping: Mapping[int, int], keep_unmapped: bool, num_classes: int, ignore_index: int
) -> tuple[np.ndarray, list[int]]:
    """Class indices ``H×W int64`` for raw mask values, and the raw values that map to neither a class nor ignore.

    A value in ``mapping`` becomes ``mapping[value]``; any other stays itself if ``keep_unmapped``, else is invalid.
    """
    small_unsigned = mask.dtype.kind == "u" and mask.dtype.itemsize <= 2  # 8/16-bit PNGs: a lookup table is 10× faster
    if small_unsigned:
        values = np.flatnonzero(np.bincount(mask.ravel()))
    else:
        values, inverse = np.unique(mask, return_inverse=True)
    invalid = num_classes  # any label outside the classes that is not ignore_index
    labels = np.array(
        [mapping.get(value, value if keep_unmapped else invalid) for value in values.tolist()], dtype=np.int64
    )
    bad = values[(labels != ignore_index) & ((labels < 0) | (labels >= num_classes))].tolist()
    if small_unsigned:
        table = np.zeros(int(values[-1]) + 1, dtype=np.int64)
        table[values] = labels
        return table[mask], bad
    return labels[inverse].reshape(mask.shape), bad


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Disjoint sorted index lists ``(train, val)`` of ``range(count)``, val a random ``val_fraction`` of it."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    num_val = max(1, round(count * val_fraction))
    if num_val >= count:
        raise ConfigError(
            f"data.val_fraction={val_fraction} of {count} images leaves none for training; lower data.val_fraction"
        )
    order = np.random.default_rng(seed).permutation(count)
    return sorted(order[num_val:].tolist()), sorted(order[:num_val].tolist())


class FilePairs(Dataset):
    """``(PIL image, PIL mask)`` pairs read from two parallel lists of files (images in their own mode: converted
    by :class:`CheckedSamples`)."""

    def __init__(self, images: Sequence[Path], masks: Sequence[Path]) -> None:
        self.images = list(images)
        self.masks = list(masks)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, Image.Image]:
        return Image.open(self.images[index]), Image.open(self.masks[index])


class CheckedSamples(Dataset):
    """``(image H×W×3 uint8, mask H×W int64)`` from ``source``, whose sample ``i`` comes from ``images[i]`` and
    ``masks[i]``; raw mask values are relabelled as in :func:`relabel`.

    ``value_rule`` completes "mask … has values …, " in the message about bad values; ``fix`` says what to do.
    ``valid`` lists a valid-region mask per sample (or None): its zero pixels become ``ignore_index``, so they count
    in neither the loss nor the metrics.
    """

    def __init__(
        self,
        source: Dataset,
        images: Sequence[str | Path],
        masks: Sequence[str | Path],
        num_classes: int,
        ignore_index: int,
        mapping: Mapping[int, int] | None = None,
        keep_unmapped: bool = True,
        value_rule: str | None = None,
        fix: str = "fix or remove the file",
        valid: Sequence[str | Path] | None = None,
    ) -> None:
        if len(images) != len(source) or len(masks) != len(source):  # type: ignore[arg-type]
            raise ValueError("images and masks must list the files of every sample of source")
        if valid is not None and len(valid) != len(source):  # type: ignore[arg-type]
            raise ValueError("valid must list one valid-region mask per sample of source")
        self.source = source
        self.images = [Path(path) for path in images]
        self.masks = [Path(path) for path in masks]
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mapping = dict(mapping or {})
        self.keep_unmapped = keep_unmapped
        self.value_rule = value_rule or (
            f"which are neither a class index (0–{num_classes - 1}) nor ignore_index {ignore_index}"
        )
        self.fix = fix
        self.valid = [Path(path) for path in valid] if valid is not None else None

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_file, mask_file = self.images[index], self.masks[index]
        try:
            image, target = self.source[index]
            image = rgb_array(image)
            raw_mask = mask_array(target)
        except Exception as error:
            kind, culprit = ("image", image_file) if not image_is_readable(image_file) else ("mask", mask_file)
            if not culprit.exists():
                raise DataError(
                    f"{kind} file {culprit} does not exist; restore it, or remove it from the dataset's split list"
                ) from error
            raise DataError(f"cannot read {kind} file {culprit} ({brief(error)}); replace or remove it") from error

        if raw_mask.ndim != 2:
            raise DataError(
                f"mask {mask_file} has shape {raw_mask.shape} rather than H×W; "
                "masks must be single-channel (greyscale or palette) images of class indices"
            )
        if raw_mask.shape != image.shape[:2]:
            (height, width), (mask_height, mask_width) = image.shape[:2], raw_mask.shape
            raise DataError(
                f"image {image_file} is {height}×{width} pixels but its mask {mask_file} is "
                f"{mask_height}×{mask_width}; a mask must have its image's size"
            )
        mask, bad_values = relabel(raw_mask, self.mapping, self.keep_unmapped, self.num_classes, self.ignore_index)
        if bad_values:
            raise DataError(f"mask {mask_file} has values {listing(bad_values)}, {self.value_rule}; {self.fix}")
        if self.valid is not None:
            mask[~self.valid_region(index, image_file, image.shape[:2])] = self.ignore_index
        return image, mask

    def valid_region(self, index: int, image_file: Path, size: tuple[int, ...]) -> np.ndarray:
        """``H×W`` bool: True where sample ``index``'s valid-region mask is nonzero (any channel of a colour one)."""
        path = self.valid[index]  # type: ignore[index]
        try:
            with Image.open(path) as picture:
                region = mask_array(picture)
        except Exception as error:
            if not path.exists():
                raise DataError(
                    f"valid-region mask {path} does not exist; restore it, or remove its image {image_file}"
                ) from error
            raise DataError(f"cannot read valid-region mask {path} ({brief(error)}); replace it") from error
        region = region.any(axis=-1) if region.ndim == 3 else region != 0
        if region.shape != tuple(size):
            raise DataError(
                f"image {image_file} is {size[0]}×{size[1]} pixels but its valid-region mask {path} is "
                f"{region.shape[0]}×{region.shape[1]}; a valid-region mask must have its image's size"
            )
        return region
