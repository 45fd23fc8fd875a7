"""``data=voc`` and ``data=voc_aug``: PASCAL VOC 2012 segmentation (torchvision ``VOCSegmentation``, ``SBDataset``).

21 classes (background and 20 objects); object outlines are 255 in VOC's masks and count as ``ignore_index``.
``voc`` trains on VOC's 1,464 ``train`` images; ``voc_aug`` on the usual 10,582: SBD's ``train`` and ``val`` plus VOC
``train``, without VOC ``val`` images, each image once (an image in both VOC and SBD keeps VOC's own mask). Both
validate and test on VOC's 1,449 ``val`` images. Samples are ``(image H×W×3 uint8, mask H×W int64)``, up to 500×500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset, Dataset, Subset
from torchvision.datasets import SBDataset, VOCSegmentation
from torchvision.datasets.voc import DATASET_YEAR_DICT

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.download import DatasetLocation, ensure_dataset
from upseg.data.palette import label_colormap
from upseg.data.samples import CheckedSamples
from upseg.errors import ConfigError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOC_PALETTE = label_colormap(len(VOC_CLASSES))
VOC_BOUNDARY = 255  # the value of object outlines in VOC's masks
YEAR = "2012"


def voc_location(root: str | Path) -> DatasetLocation:
    base = DATASET_YEAR_DICT[YEAR]["base_dir"]
    return DatasetLocation(
        name="PASCAL VOC 2012",
        root=Path(root),
        required=(
            f"{base}/JPEGImages",
            f"{base}/SegmentationClass",
            f"{base}/ImageSets/Segmentation/train.txt",
            f"{base}/ImageSets/Segmentation/val.txt",
        ),
        layout=f"{base}/JPEGImages/*.jpg, {base}/SegmentationClass/*.png and "
        f"{base}/ImageSets/Segmentation/{{train,val}}.txt",
        urls=(DATASET_YEAR_DICT[YEAR]["url"],),
    )


def sbd_location(root: str | Path) -> DatasetLocation:
    return DatasetLocation(
        name="the SBD dataset (Semantic Boundaries Dataset)",
        root=Path(root),
        required=("img", "cls", "train.txt", "val.txt"),
        layout="img/*.jpg, cls/*.mat, train.txt and val.txt",
        urls=(SBDataset.url,),
        root_key="data.sbd_root",
    )


def image_ids(files: Sequence[str]) -> list[str]:
    return [Path(file).stem for file in files]


class VOCDataModule(SegmentationDataModule):
    """VOC 2012 ``train`` for training, ``val`` for validation and testing."""

    def __init__(self, root: str | Path, download: bool = True, num_classes: int = len(VOC_CLASSES), **kwargs: Any):
        if num_classes != len(VOC_CLASSES):
            raise ConfigError(
                f"data.num_classes={num_classes} but PASCAL VOC has {len(VOC_CLASSES)} classes; "
                "leave data.num_classes at its default"
            )
        super().__init__(num_classes=num_classes, class_names=VOC_CLASSES, **kwargs)
        self.root = Path(root)
        self.download = download
        self.palette = VOC_PALETTE
        # Outlines stay ignored whatever ignore_index is set to.
        self.mask_mapping = {VOC_BOUNDARY: self.ignore_index}

    def locations(self) -> list[tuple[DatasetLocation, Callable[[], object]]]:
        """Each dataset this module reads, with the torchvision call that downloads it."""
        root = str(self.root)
        return [(voc_location(root), lambda: VOCSegmentation(root, year=YEAR, image_set="train", download=True))]

    def ensure_present(self) -> None:
        for location, fetch in self.locations():
            ensure_dataset(location, self.download, fetch)

    def prepare_data(self) -> None:
        self.ensure_present()

    def checked(self, source: VOCSegmentation | SBDataset) -> CheckedSamples:
        return CheckedSamples(
            source, source.images, source.masks, self.num_classes, self.ignore_index, mapping=self.mask_mapping
        )

    def voc(self, image_set: str) -> VOCSegmentation:
        return VOCSegmentation(str(self.root), year=YEAR, image_set=image_set)

    def train_set(self) -> Dataset:
        return self.checked(self.voc("train"))

    def build_datasets(self, stage: str | None) -> dict[str, Dataset]:
        self.ensure_present()
        splits = self.splits_for(stage)
        datasets: dict[str, Dataset] = {}
        if "train" in splits:
            datasets["train"] = self.train_set()
        if "val" in splits or "test" in splits:
            val = self.checked(self.voc("val"))
            datasets.update({split: val for split in ("val", "test") if split in splits})
        return datasets


class VOCAugDataModule(VOCDataModule):
    """VOC 2012 with the SBD-augmented training set (10,582 images); ``sbd_root`` holds SBD's files."""

    def __init__(self, root: str | Path, sbd_root: str | Path, download: bool = True, **kwargs: Any):
        super().__init__(root, download, **kwargs)
        self.sbd_root = Path(sbd_root)

    def locations(self) -> list[tuple[DatasetLocation, Callable[[], object]]]:
        sbd_root = str(self.sbd_root)
        return [
            *super().locations(),
            (
                sbd_location(sbd_root),
                lambda: SBDataset(sbd_root, image_set="train", mode="segmentation", download=True),
            ),
        ]

    def train_set(self) -> Dataset:
        voc_train = self.voc("train")
        held_out = set(image_ids(self.voc("val").images))
        taken = set(image_ids(voc_train.images))
        parts: list[Dataset] = [self.checked(voc_train)]
        for image_set in ("train", "val"):
            sbd = SBDataset(str(self.sbd_root), image_set=image_set, mode="segmentation")
            keep = []
            for index, image_id in enumerate(image_ids(sbd.images)):
                if image_id not in held_out and image_id not in taken:
                    keep.append(index)
                    taken.add(image_id)
            parts.append(Subset(self.checked(sbd), keep))
        return ConcatDataset(parts)
