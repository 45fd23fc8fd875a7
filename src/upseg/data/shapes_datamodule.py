"""``data=shapes``: the procedural dataset of :mod:`upseg.data.shapes` as a datamodule (offline, deterministic)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.shapes import ShapesDataset

SHAPES_PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48]], dtype=np.uint8
)


class ShapesDataModule(SegmentationDataModule):
    """Train, val and test sets of ``shapes`` drawn from disjoint seeds (``3·seed``, ``3·seed+1``, ``3·seed+2``)."""

    def __init__(
        self,
        num_train: int = 2000,
        num_val: int = 200,
        num_test: int = 200,
        image_size: int = 64,
        num_classes: int = 4,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("crop_size", None)
        kwargs.setdefault("ignore_index", 255)
        class_names = ShapesDataset(1, image_size, num_classes).class_names
        super().__init__(num_classes=num_classes, class_names=class_names, **kwargs)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.image_size = image_size
        self.seed = seed
        self.palette = SHAPES_PALETTE[:num_classes]

    def build_datasets(self, stage: str | None) -> dict[str, Dataset]:
        splits = self.splits_for(stage)
        offsets = {"train": 0, "val": 1, "test": 2}
        return {
            split: ShapesDataset(self.sizes[split], self.image_size, self.num_classes, self.seed * 3 + offsets[split])
            for split in splits
        }
