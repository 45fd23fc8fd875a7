"""The files ``predict.py`` writes per image, all in one folder: ``<name>.png``, the class indices as a palette PNG
(pixel value = class index, shown in the class colours; 16-bit greyscale without palette above 256 classes),
optionally ``<name>_overlay.jpg`` (the image with the mask's colours blended over it, ``OVERLAY_ALPHA``) and
``<name>_probabilities.npy`` (``C×H×W`` float32 softmax).

``<name>`` is the input file's stem; inputs that share a stem (``a.jpg`` and ``a.png``, or files of several folders
through a glob) are told apart by their suffix (``a_jpg``, ``a_png``) and then by their position. A name is only ever
a file name: outputs never leave the folder.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

OVERLAY_ALPHA = 0.5


def output_names(files: list[Path]) -> list[str]:
    """A distinct output name per input file (see the module docstring)."""
    stems = Counter(path.stem for path in files)
    names = [path.stem if stems[path.stem] == 1 else f"{path.stem}_{path.suffix.lstrip('.')}" for path in files]
    counts = Counter(names)
    return [name if counts[name] == 1 else f"{name}_{index}" for index, name in enumerate(names)]


def save_mask(mask: np.ndarray, palette: np.ndarray, path: Path) -> None:
    """``H×W`` class indices as a palette PNG (16-bit greyscale for more than 256 classes)."""
    if len(palette) > 256:
        Image.fromarray(mask.astype(np.uint16)).save(path)
        return
    picture = Image.fromarray(mask.astype(np.uint8))  # mode L; a palette makes it mode P with the same values
    colours = np.zeros((256, 3), dtype=np.uint8)
    colours[: len(palette)] = palette
    picture.putpalette(colours.ravel().tolist())
    picture.save(path)


def save_overlay(image: np.ndarray, mask: np.ndarray, palette: np.ndarray, path: Path) -> None:
    """``(1 − α)·image + α·colour(mask)`` as a JPEG (``image`` ``H×W×3`` uint8)."""
    colours = palette[np.clip(mask, 0, len(palette) - 1)].astype(np.float32)
    blended = (1 - OVERLAY_ALPHA) * image.astype(np.float32) + OVERLAY_ALPHA * colours
    Image.fromarray(np.rint(blended).astype(np.uint8)).save(path, quality=90)
