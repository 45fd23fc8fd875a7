"""Images without masks, for prediction: what ``input=`` names, read as the datamodules read images.

``input`` is a file, a folder (every file in it that is not hidden, so that a stray non-image is named rather than
passed over silently) or a glob pattern (``*``, ``?``, ``[…]``; ``**`` for subfolders). Images are read by PIL in any
mode it decodes — JPEG, PNG, TIFF (16-bit too), BMP, GIF; grey, RGB, RGBA, palette — fully, so a truncated file is
found, and converted as the checkpoint's :class:`~upseg.data.spec.DataSpec` says (``"rgb"``:
:func:`upseg.data.samples.rgb_array`). Arrays (NumPy or torch, for :func:`upseg.load`) follow the same rule:
:func:`rgb_from_array`.

:class:`UnlabeledImages` serves :class:`ImageSample` s ``(image 3×H'×W' float32 or None, index, (H, W), error)``;
a file that cannot be read is not raised but returned with its one-line ``error``, so that one bad file among many
is named and skipped while the others are predicted. Batches are one image each (:func:`collate_one`): images keep
their own size.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from upseg.data.samples import brief, rgb_array
from upseg.data.spec import DataSpec
from upseg.errors import DataError

RGB_CHANNELS = {1: "grey", 3: "RGB", 4: "RGBA"}


def image_files(input: str) -> list[Path]:
    """The files ``input`` names (see the module docstring), sorted; one :class:`DataError` when it names none."""
    path = Path(input).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(item for item in path.iterdir() if item.is_file() and not item.name.startswith("."))
        if not files:
            raise DataError(f"input folder {path} holds no files; put the images to predict there")
        return files
    if glob.has_magic(str(path)):
        files = sorted(Path(match) for match in glob.glob(str(path), recursive=True) if Path(match).is_file())
        if not files:
            raise DataError(f"input={input} matches no file; check the pattern (quote it so the shell leaves it)")
        return files
    raise DataError(f"input {input} does not exist; give an image file, a folder of images or a glob pattern")


def rgb_from_array(values: np.ndarray, name: str = "the image") -> np.ndarray:
    """``H×W×3`` uint8 from an ``H×W`` or ``H×W×C`` array (C = 1 grey, 3 RGB, 4 RGBA: alpha dropped) of uint8, uint16
    (scaled by 255/65535, as for files), bool or float values in [0, 1] (rounded to 8 bits, as a file would hold them);
    one :class:`DataError` naming ``name`` for any other shape."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[..., None]
    if values.ndim != 3 or values.shape[-1] not in RGB_CHANNELS:
        shape = "×".join(map(str, values.shape))
        raise DataError(
            f"{name} has shape {shape}: the model takes 3-channel RGB images, given as H×W (grey) or H×W×C arrays "
            "with C = 1, 3 or 4 (RGBA: alpha dropped), or C×H×W tensors"
        )
    if values.dtype == bool:
        values = values.astype(np.uint8) * 255
    elif values.dtype == np.uint16:
        values = np.rint(values * (255.0 / 65535.0)).astype(np.uint8)
    elif values.dtype.kind == "f":
        values = np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif values.dtype != np.uint8:
        raise DataError(f"{name} has values of type {values.dtype}; give uint8, uint16, bool or floats in [0, 1]")
    channels = values.shape[-1]
    if channels == 1:
        values = np.repeat(values, 3, axis=-1)
    return np.ascontiguousarray(values[..., :3])


def read_image(path: Path) -> np.ndarray:
    """``H×W×3`` uint8 of an image file, fully decoded; one :class:`DataError` naming the file when it is not an
    image PIL can decode (or is truncated)."""
    try:
        with Image.open(path) as image:
            image.load()
            return rgb_array(image)
    except Exception as error:
        raise DataError(f"{path} is not an image that can be read ({brief(error)})") from None


class ImageSample(NamedTuple):
    """One image to predict: normalised ``3×H'×W'`` (None when it could not be read), its index in the listing, its
    own size ``(H, W)`` and the one-line error that skipped it."""

    image: torch.Tensor | None
    index: int
    size: tuple[int, int]
    error: str | None


class UnlabeledImages(Dataset):
    """The images of ``files``, converted and normalised as ``spec`` says (see the module docstring)."""

    def __init__(self, files: list[Path], spec: DataSpec) -> None:
        self.files = files
        self.spec = spec
        self.transform = spec.transform()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> ImageSample:
        try:
            image = read_image(self.files[index])
        except DataError as error:
            return ImageSample(None, index, (0, 0), str(error))
        tensor = self.transform(image=image)["image"]
        return ImageSample(tensor, index, (image.shape[0], image.shape[1]), None)


def collate_one(samples: list[ImageSample]) -> ImageSample:
    """A batch of one sample, its image given a batch axis (``1×3×H'×W'``)."""
    (sample,) = samples
    return sample._replace(image=sample.image[None] if sample.image is not None else None)
