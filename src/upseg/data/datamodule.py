"""The LightningDataModule every dataset goes through.

A subclass only says where its raw samples come from (:meth:`SegmentationDataModule.build_datasets`: ``(image
H×W×3 uint8, mask H×W int)`` pairs); this class applies the augmentation pipelines and serves :class:`Batch` es
``(images N×3×H×W float32, masks N×H×W int64, indices N int64)``, ``indices`` being each sample's position in its
dataset (so per-image results know their image whatever the sampler or the batch size). Eval batches of
differently sized images are padded to the largest (images with 0, masks with ``ignore_index``), so padding never
counts in the loss or the metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from upseg.data.distributed import eval_sampler
from upseg.data.spec import DataSpec
from upseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from upseg.errors import ConfigError


def default_num_workers() -> int:
    """``min(8, usable CPUs)``: enough to keep one GPU fed without oversubscribing small machines."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(8, cpus)


class CachedSamples(Dataset):
    """``source`` with every sample kept after its first decoding (in each loader worker's memory): for small
    datasets whose files — e.g. LZW TIFFs and GIFs — cost more to decode than a training step."""

    def __init__(self, source: Dataset) -> None:
        self.source = source
        self.cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        if index not in self.cache:
            self.cache[index] = self.source[index]
        return self.cache[index]


class TransformedDataset(Dataset):
    """Applies an albumentations pipeline to a dataset of ``(image, mask)`` numpy pairs. With ``length`` it serves
    that many samples, sample ``i`` drawn from source sample ``i mod len(source)`` (each with its own random crop)."""

    def __init__(self, source: Dataset, transform: Callable[..., dict[str, Any]], length: int | None = None):
        self.source = source
        self.transform = transform
        self.length = length

    def __len__(self) -> int:
        return self.length or len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(image 3×H×W float32, mask H×W int64, index)``."""
        image, mask = self.source[index % len(self.source)]  # type: ignore[arg-type]
        out = self.transform(image=image, mask=np.asarray(mask, dtype=np.int64))
        return out["image"], out["mask"].long(), index % len(self.source)  # type: ignore[arg-type]


class Batch(NamedTuple):
    """A batch: ``images N×3×H×W`` float32, ``masks N×H×W`` int64 and the samples' dataset ``indices`` (``N``)."""

    images: torch.Tensor
    masks: torch.Tensor
    indices: torch.Tensor


def pad_collate(ignore_index: int) -> Callable[[list[tuple[torch.Tensor, torch.Tensor, int]]], Batch]:
    """Collate samples of any size by padding bottom/right to the largest: images with 0, masks with ignore_index."""

    def collate(samples: list[tuple[torch.Tensor, torch.Tensor, int]]) -> Batch:
        height = max(image.shape[-2] for image, _, _ in samples)
        width = max(image.shape[-1] for image, _, _ in samples)
        images, masks = [], []
        for image, mask, _ in samples:
            pad = (0, width - image.shape[-1], 0, height - image.shape[-2])
            images.append(F.pad(image, pad, value=0.0))
            masks.append(F.pad(mask, pad, value=ignore_index))
        indices = torch.tensor([index for _, _, index in samples], dtype=torch.long)
        return Batch(torch.stack(images), torch.stack(masks), indices)

    return collate


STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
ALL_SPLITS = ("train", "val", "test")


class SegmentationDataModule(L.LightningDataModule):
    """Batches of normalised images and integer masks for train / val / test.

    Subclasses implement :meth:`build_datasets`, pass ``num_classes`` and ``class_names`` to this constructor and
    optionally set ``palette`` (``num_classes×3`` uint8 colours for pictures). The datamodule owns the label space:
    the model is built with its ``num_classes`` and ``class_names`` (:func:`upseg.training.build.build_module`), and
    with its :meth:`data_spec`, what predicting on new images needs (kept in checkpoints).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        pin_memory: bool = True,
        crop_size: int | Sequence[int] | None = 512,
        eval_size: int | Sequence[int] | None = None,
        scale_range: Sequence[float] = (0.5, 2.0),
        hflip: bool = True,
        color_jitter: float = 0.2,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        samples_per_epoch: int | None = None,
        cache: bool = False,
    ) -> None:
        super().__init__()
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ConfigError(f"data.samples_per_epoch must be positive or null, got {samples_per_epoch}")
        self.samples_per_epoch = samples_per_epoch
        self.cache = cache
        if num_classes < 2:
            raise ConfigError(f"data.num_classes must be at least 2, got {num_classes}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be positive, got {batch_size}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ConfigError(
                f"data.scale_range must be [low, high] with 0 < low ≤ high (e.g. [0.5, 2.0]), got {list(scale_range)}"
            )
        if num_workers is not None and num_workers < 0:
            raise ConfigError(f"data.num_workers must be 0 (load in the main process) or more, got {num_workers}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names else [f"class_{i}" for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ConfigError(
                f"data.class_names has {len(self.class_names)} names but data.num_classes is {num_classes}"
            )
        self.palette: np.ndarray | None = None
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.train_transform = train_transform(crop_size, ignore_index, scale_range, hflip, color_jitter, mean, std)
        self.eval_transform = eval_transform(eval_size, mean, std)
        self.normalisation = (tuple(mean), tuple(std))
        self.eval_size = eval_size
        self.datasets: dict[str, Dataset] = {}

    def data_spec(self) -> DataSpec:
        """Normalisation, evaluation size, image conversion and palette: what a model trained on this data needs to
        predict on new images (:class:`~upseg.data.spec.DataSpec`)."""
        mean, std = self.normalisation
        size = self.eval_size
        palette = self.palette
        return DataSpec(
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in std),
            eval_size=size if size is None or isinstance(size, int) else (int(size[0]), int(size[1])),
            palette=tuple(tuple(int(c) for c in colour) for colour in palette) if palette is not None else None,
        )

    @staticmethod
    def splits_for(stage: str | None) -> tuple[str, ...]:
        """The splits a Lightning stage needs: fit → train and val, validate → val, test → test, anything else all."""
        return STAGE_SPLITS.get(stage or "", ALL_SPLITS)

    def build_datasets(self, stage: str | None) -> dict[str, Dataset]:
        """Raw datasets keyed by ``"train"``, ``"val"``, ``"test"``: those of :meth:`splits_for` ``(stage)``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        for split, source in self.build_datasets(stage).items():
            source = CachedSamples(source) if self.cache else source
            if split == "train":
                self.datasets[split] = TransformedDataset(source, self.train_transform, self.samples_per_epoch)
            else:
                self.datasets[split] = TransformedDataset(source, self.eval_transform)

    def raw_dataset(self, split: str) -> Dataset:
        """The untransformed dataset of a split (for pictures of inputs and ground truth)."""
        if split not in self.datasets:
            self.setup("test" if split == "test" else "fit")
        return self.datasets[split].source  # type: ignore[attr-defined]

    def sample_name(self, split: str, index: int) -> str:
        """The image file name of sample ``index`` of ``split`` (empty for generated data)."""
        dataset = self.raw_dataset(split)
        while isinstance(dataset, Subset | CachedSamples):
            dataset, index = (
                (dataset.dataset, dataset.indices[index]) if isinstance(dataset, Subset) else (dataset.source, index)
            )
        images = getattr(dataset, "images", None)  # CheckedSamples and torchvision's datasets list their files
        return os.path.basename(str(images[index])) if images is not None else ""

    def dataloader(self, split: str, shuffle: bool = False) -> DataLoader:
        """Batches of ``split`` (``"train"``, ``"val"`` or ``"test"``), which setup() must have prepared."""
        if split not in self.datasets:
            raise ConfigError(f"the {split} split of {type(self).__name__} is not set up; call setup() first")
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            shuffle=shuffle,
            sampler=None if shuffle else eval_sampler(self.datasets[split]),  # under DDP: each sample once
            drop_last=shuffle and len(self.datasets[split]) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=pad_collate(self.ignore_index),
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test", shuffle=False)
