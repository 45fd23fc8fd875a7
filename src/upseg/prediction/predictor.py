"""``upseg.load``: a trained checkpoint as an object that predicts masks for images of any size.

.. code-block:: python

    model = upseg.load("logs/train/runs/<run>/checkpoints/last.ckpt")
    mask = model.predict("photo.jpg")              # H×W int64 class indices, at the photo's own size
    probabilities = model.predict_proba(image)     # C×H×W float32 softmax

An image is a path, a PIL image, a NumPy array (``H×W`` or ``H×W×C``, C = 1, 3 or 4) or a torch tensor (``C×H×W``
or ``H×W``), converted and normalised as the checkpoint's :class:`~upseg.data.DataSpec` says — exactly as
``predict.py`` reads files (:mod:`upseg.data.unlabeled`); a list of them gives a list of results. The logits are
those of :meth:`SegmentationModule.infer` under the inference settings given as keywords (whole image by default;
``upseg.load(path, mode="slide", crop=512, flip=True)``, see :class:`~upseg.inference.InferenceSettings`) and, where
the data spec resizes images for evaluation (``eval_size``), are resized back bilinearly to the image's own size
before the softmax or argmax (:func:`logits_at_size`).

``device`` is any torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); ``precision`` one of Lightning's names,
``"32-true"`` (the default), ``"bf16-mixed"``, ``"16-mixed"`` (autocast) or ``"64-true"``, or short ``"32"``,
``"bf16"``, ``"16"``, ``"64"``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from upseg.data import DataSpec
from upseg.data.samples import rgb_array
from upseg.data.unlabeled import read_image, rgb_from_array
from upseg.errors import ConfigError, UpsegError
from upseg.training.checkpoints import module_from_checkpoint
from upseg.training.module import SegmentationModule

log = logging.getLogger(__name__)
PRECISIONS: dict[str, torch.dtype | None] = {
    "32-true": None,
    "32": None,
    "bf16-mixed": torch.bfloat16,
    "bf16": torch.bfloat16,
    "16-mixed": torch.float16,
    "16": torch.float16,
    "64-true": torch.float64,
    "64": torch.float64,
}

ImageLike = str | Path | Image.Image | np.ndarray | Tensor


def logits_at_size(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """``N×K×h×w`` logits as float32 (float64 stays) at ``size = (H, W)``: bilinearly resized where they differ."""
    logits = logits if logits.dtype == torch.float64 else logits.float()
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def rgb_image(image: ImageLike) -> np.ndarray:
    """``H×W×3`` uint8 of any image the API takes (see the module docstring)."""
    if isinstance(image, str | Path):
        return read_image(Path(image))
    if isinstance(image, Image.Image):
        return rgb_array(image)
    if isinstance(image, Tensor):
        values = image.detach().cpu()
        if values.ndim == 3 and values.shape[0] in (1, 3, 4):
            values = values.permute(1, 2, 0)  # C×H×W, torchvision's layout → H×W×C
        return rgb_from_array(values.numpy(), "the tensor")
    if isinstance(image, np.ndarray):
        return rgb_from_array(image, "the array")
    raise UpsegError(
        f"cannot predict on a {type(image).__name__}; give a path, a PIL image, a NumPy array or a torch tensor"
    )


class Predictor:
    """A trained model that predicts on images (see the module docstring); made by :func:`load`."""

    def __init__(self, module: SegmentationModule, device: str | torch.device = "cpu", precision: str = "32-true"):
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device)
        self.dtype = PRECISIONS[precision]
        module = module.to(self.device).eval()
        self.module = module.double() if self.dtype == torch.float64 else module
        self.spec: DataSpec = module.data_spec
        self.transform = self.spec.transform()
        self.class_names: list[str] = list(module.class_names)
        self.palette: np.ndarray = self.spec.colours(len(self.class_names))
        self.ignore_index: int = module.hparams.ignore_index

    @contextlib.contextmanager
    def _precision(self) -> Iterator[None]:
        mixed = self.dtype in (torch.bfloat16, torch.float16)
        with torch.inference_mode(), torch.autocast(self.device.type, self.dtype, enabled=mixed):
            yield

    def logits(self, image: ImageLike) -> Tensor:
        """``1×K×H×W`` float32 logits at the image's own size."""
        rgb = rgb_image(image)
        tensor = self.transform(image=rgb)["image"][None].to(self.device)
        if self.dtype == torch.float64:
            tensor = tensor.double()
        with self._precision():
            logits = self.module.infer(tensor)
        return logits_at_size(logits, rgb.shape[:2])

    def predict_proba(self, image: ImageLike | Sequence[ImageLike]) -> np.ndarray | list[np.ndarray]:
        """``C×H×W`` float32 class probabilities (softmax), at the image's own size (a list for a list)."""
        if isinstance(image, list | tuple):
            return [self.predict_proba(one) for one in image]  # type: ignore[misc]
        return self.logits(image).softmax(1)[0].float().cpu().numpy()

    def predict(self, image: ImageLike | Sequence[ImageLike]) -> np.ndarray | list[np.ndarray]:
        """``H×W`` int64 class indices, at the image's own size (a list for a list)."""
        if isinstance(image, list | tuple):
            return [self.predict(one) for one in image]  # type: ignore[misc]
        return self.logits(image).argmax(1)[0].cpu().numpy()

    def __repr__(self) -> str:
        hparams = self.module.hparams
        return (
            f"Predictor({hparams.net['name']}, decoder={hparams.decoder['name']}, classes={self.class_names}, "
            f"inference={self.module.inference.describe()}, device={self.device})"
        )


def load(
    path: str | Path, device: str | torch.device = "cpu", precision: str = "32-true", **inference: Any
) -> Predictor:
    """The :class:`Predictor` of a checkpoint written by ``scripts/train.py``, read weights-only; ``inference``:
    :class:`~upseg.inference.InferenceSettings` keywords (``mode``, ``crop``, ``stride``, ``flip``, ``scales``, …)."""
    module = module_from_checkpoint(path, key="checkpoint")
    check_channels(module, path)
    module.inference = inference or None
    return Predictor(module, device, precision)


def check_channels(module: SegmentationModule, path: str | Path) -> None:
    """One :class:`UpsegError` when the network takes other images than the data spec makes; a warning saying what a
    checkpoint from before the data spec was kept gets instead."""
    if module.hparams.get("data_spec") is None:
        spec = module.data_spec
        log.warning(
            "checkpoint %s predates the data spec: predicting with mean %s, std %s, eval_size %s (its recorded data "
            "config's, else the defaults), RGB images and the VOC colour map",
            path,
            list(spec.mean),
            list(spec.std),
            spec.eval_size,
        )
    expected, made = module.net.in_channels, module.data_spec.channels
    if expected != made:
        raise UpsegError(
            f"checkpoint {path}: its network takes {expected}-channel images but its data spec makes {made}-channel "
            "ones; it cannot predict on images"
        )
