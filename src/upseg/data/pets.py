"""``data=pets``: the Oxford-IIIT Pet dataset (torchvision ``OxfordIIITPet``) with its trimaps as masks.

Trimap values 1 (pet), 2 (background) and 3 (border) become classes 0, 1 and 2; with ``binary=True`` the classes
are pet 0 and background 1 and the border is ``ignore_index``. The official ``trainval`` list is split into train and
val by ``val_fraction`` and ``split_seed``; the official ``test`` list is the test set. Samples are
``(image H×W×3 uint8, mask H×W int64)``; images are about 500×375 pixels, each of its own size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset
from torchvision.datasets import OxfordIIITPet

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.download import DatasetLocation, ensure_dataset
from upseg.data.samples import CheckedSamples, split_indices
from upseg.errors import ConfigError

PET, BACKGROUND, BORDER = 1, 2, 3  # trimap values
PETS_CLASSES = ("pet", "background", "border")
PETS_PALETTE = np.array([[220, 20, 60], [0, 0, 0], [255, 255, 255]], dtype=np.uint8)


def pets_location(root: str | Path) -> DatasetLocation:
    base = "oxford-iiit-pet"
    return DatasetLocation(
        name="the Oxford-IIIT Pet dataset",
        root=Path(root),
        required=(
            f"{base}/images",
            f"{base}/annotations/trimaps",
            f"{base}/annotations/trainval.txt",
            f"{base}/annotations/test.txt",
        ),
        layout=f"{base}/images/*.jpg, {base}/annotations/trimaps/*.png and {base}/annotations/{{trainval,test}}.txt",
        urls=tuple(url for url, _md5 in OxfordIIITPet._RESOURCES),
    )


class PetsDataModule(SegmentationDataModule):
    """Oxford-IIIT Pet segmentation: 3 classes (pet, background, border) or 2 with ``binary``."""

    def __init__(
        self,
        root: str | Path,
        download: bool = True,
        binary: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        classes = PETS_CLASSES[:2] if binary else PETS_CLASSES
        if num_classes is not None and num_classes != len(classes):
            raise ConfigError(
                f"data.num_classes={num_classes} does not fit data.binary={str(binary).lower()}, which gives "
                f"{len(classes)} classes; leave data.num_classes at its default, which follows data.binary"
            )
        super().__init__(num_classes=len(classes), class_names=classes, **kwargs)
        self.location = pets_location(root)
        self.download = download
        self.binary = binary
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.palette = PETS_PALETTE[: len(classes)]
        border = self.ignore_index if binary else 2
        self.trimap_classes = {PET: 0, BACKGROUND: 1, BORDER: border}

    def ensure_present(self) -> None:
        root = str(self.location.root)
        ensure_dataset(
            self.location, self.download, lambda: OxfordIIITPet(root, target_types="segmentation", download=True)
        )

    def prepare_data(self) -> None:
        self.ensure_present()

    def official_split(self, split: str) -> CheckedSamples:
        source = OxfordIIITPet(str(self.location.root), split=split, target_types="segmentation")
        return CheckedSamples(
            source,
            source._images,  # torchvision keeps the file lists private; they name a bad file in messages
            source._segs,
            self.num_classes,
            self.ignore_index,
            mapping=self.trimap_classes,
            keep_unmapped=False,
            value_rule="which are not trimap values 1 (pet), 2 (background) or 3 (border)",
        )

    def build_datasets(self, stage: str | None) -> dict[str, Dataset]:
        self.ensure_present()
        splits = self.splits_for(stage)
        datasets: dict[str, Dataset] = {}
        if "train" in splits or "val" in splits:
            trainval = self.official_split("trainval")
            train_indices, val_indices = split_indices(len(trainval), self.val_fraction, self.split_seed)
            datasets["train"], datasets["val"] = Subset(trainval, train_indices), Subset(trainval, val_indices)
        if "test" in splits:
            datasets["test"] = self.official_split("test")
        return {split: datasets[split] for split in splits}
