"""``data=folder``: a dataset of your own, laid out as a folder of images and a folder of masks per split.

A mask belongs to the image with the same file stem (``img/cat_1.jpg`` ↔ ``masks/cat_1.png``). Images are .jpg, .jpeg,
.png, .tif, .tiff or .bmp; masks are single-channel PNGs whose values are class indices (palette-mode PNGs are read
as their indices, not their colours). ``mask_mapping`` maps raw values to classes first (e.g. ``{255: 1}``); every
other value must be a class index or ``ignore_index``. Validation comes from its own folders or is carved from train
by ``val_fraction``; without test folders the val set is also the test set. Samples are
``(image H×W×3 uint8, mask H×W int64)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.samples import CheckedSamples, FilePairs, listing, split_indices
from upseg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MASK_SUFFIX = ".png"


def files_by_stem(folder: Path, suffixes: Sequence[str], key: str) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case), keyed by stem; ``key`` names the config key."""
    if not folder.is_dir():
        raise DataError(f"{key} folder {folder} does not exist; set data.root and {key} to where the files are")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            if path.stem in files:
                raise DataError(
                    f"{files[path.stem]} and {path} in {key} share the name {path.stem!r}; keep one of them"
                )
            files[path.stem] = path
    if not files:
        raise DataError(f"{key} folder {folder} has no {'/'.join(suffixes)} files; put the files there")
    return files


def pair_files(images_dir: Path, masks_dir: Path, split: str) -> tuple[list[Path], list[Path]]:
    """Image and mask files of one split, matched by stem, in name order."""
    images = files_by_stem(images_dir, IMAGE_SUFFIXES, f"data.{split}.images")
    masks = files_by_stem(masks_dir, (MASK_SUFFIX,), f"data.{split}.masks")
    if unmatched := sorted(set(images) - set(masks)):
        raise DataError(
            f"{len(unmatched)} images in {images_dir} have no mask of the same name in {masks_dir}: "
            f"{listing([images[stem].name for stem in unmatched])}; add their <name>.png masks or remove the images"
        )
    if unmatched := sorted(set(masks) - set(images)):
        raise DataError(
            f"{len(unmatched)} masks in {masks_dir} have no image of the same name in {images_dir}: "
            f"{listing([masks[stem].name for stem in unmatched])}; add their images or remove the masks"
        )
    stems = sorted(images)
    return [images[stem] for stem in stems], [masks[stem] for stem in stems]


class FolderDataModule(SegmentationDataModule):
    """Per-split image and mask folders under ``root``: ``train``, ``val`` and ``test`` map ``images``/``masks`` to
    folders (relative to ``root`` or absolute); a split whose ``images`` is null is absent."""

    def __init__(
        self,
        root: str | Path | None,
        train: Mapping[str, str | None],
        val: Mapping[str, str | None] | None = None,
        test: Mapping[str, str | None] | None = None,
        val_fraction: float | None = None,
        split_seed: int = 0,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        mask_mapping: Mapping[int, int] | None = None,
        **kwargs: Any,
    ) -> None:
        if root is None:
            raise ConfigError("data=folder needs data.root, the folder that holds your dataset: add data.root=<path>")
        if num_classes is None:
            raise ConfigError(
                "data=folder needs data.num_classes, the number of classes in the masks (ignore_index not counted): "
                "add data.num_classes=<n>"
            )
        super().__init__(num_classes=num_classes, class_names=class_names, **kwargs)
        self.root = Path(root)
        self.folders = {
            split: self.split_folders(split, given) for split, given in (("train", train), ("val", val), ("test", test))
        }
        if self.folders["train"] is None:
            raise ConfigError("data=folder needs data.train.images and data.train.masks, the training folders")
        if self.folders["val"] is None and val_fraction is None:
            raise ConfigError(
                "data=folder has no validation set; set data.val.images and data.val.masks, "
                "or carve one from train with data.val_fraction=0.1"
            )
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        try:
            self.mask_mapping = {int(value): int(label) for value, label in (mask_mapping or {}).items()}
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"data.mask_mapping must map integers to integers, e.g. {{255: 1}}, got {mask_mapping}"
            ) from error

    def split_folders(self, split: str, given: Mapping[str, str | None] | None) -> tuple[Path, Path] | None:
        """``(images folder, masks folder)`` of a split, or None when the split has no folders."""
        images, masks = (given or {}).get("images"), (given or {}).get("masks")
        if images is None and masks is None:
            return None
        if images is None or masks is None:
            raise ConfigError(f"data.{split}.images and data.{split}.masks must be given together; set both or neither")
        return self.root / images, self.root / masks

    def samples(self, split: str) -> CheckedSamples:
        images_dir, masks_dir = self.folders[split]  # type: ignore[misc]
        images, masks = pair_files(images_dir, masks_dir, split)
        classes = f"a class index (0–{self.num_classes - 1})"
        after_mapping = " after data.mask_mapping" if self.mask_mapping else ""
        return CheckedSamples(
            FilePairs(images, masks),
            images,
            masks,
            self.num_classes,
            self.ignore_index,
            mapping=self.mask_mapping,
            value_rule=f"which are neither {classes} nor ignore_index {self.ignore_index}{after_mapping}",
            fix="fix the mask, or map those values to classes with data.mask_mapping",
        )

    def build_datasets(self, stage: str | None) -> dict[str, Dataset]:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(
            stage or "", ("train", "val", "test")
        )
        datasets: dict[str, Dataset] = {}
        needs_val = "val" in splits or ("test" in splits and self.folders["test"] is None)
        if self.val_fraction is not None and ("train" in splits or needs_val):
            whole = self.samples("train")
            train_indices, val_indices = split_indices(len(whole), self.val_fraction, self.split_seed)
            datasets["train"], datasets["val"] = Subset(whole, train_indices), Subset(whole, val_indices)
        else:
            if "train" in splits:
                datasets["train"] = self.samples("train")
            if needs_val:
                datasets["val"] = self.samples("val")
        if "test" in splits:
            if self.folders["test"] is None:
                log.info("data=folder has no test folders (data.test.images); testing on the validation set")
                datasets["test"] = datasets["val"]
            else:
                datasets["test"] = self.samples("test")
        return {split: datasets[split] for split in splits}
