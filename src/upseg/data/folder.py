"""``data=folder``: a dataset of your own, laid out as a folder of images and a folder of masks per split — and the
base of ``data=drive`` and ``data=isbi2012``, which are real datasets in their published layouts.

Real datasets ship their files as they are, so this module reads them as they are rather than asking for a
conversion. Images are .jpg, .jpeg, .png, .tif, .tiff, .bmp or .gif (greyscale becomes 3 channels, 16-bit is scaled to
8 bits); masks are single-channel .png, .gif, .tif, .tiff or .bmp files, 8- or 16-bit, whose values are class indices
(palette images are read as their indices, not their colours). ``mask_mapping`` maps raw values to classes first
(e.g. ``{255: 1}``); every other value must be a class index or ``ignore_index``.

A mask belongs to the image with the same pairing key: by default the file stem (``img/cat_1.jpg`` ↔
``masks/cat_1.png``); ``pair_by: leading_number`` pairs by the number a name starts with (DRIVE's ``21_training.tif``
↔ ``21_manual1.gif``), and any regular expression with one group pairs by what that group matches in the stem. A split
may also name a ``valid`` folder of valid-region masks (e.g. DRIVE's field of view), paired the same way: their zero
pixels become ``ignore_index``, so only the valid region counts in the loss and the metrics.

Validation comes from its own folders, is carved from train by ``val_fraction`` or is given, with every other split,
as index lists into the training folders' pairs (``splits``); without test folders or a test index list the val set is
also the test set. Samples are ``(image H×W×3 uint8, mask H×W int64)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.samples import CheckedSamples, FilePairs, listing, split_indices
from upseg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif")
MASK_SUFFIXES = (".png", ".gif", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Pairing:
    """How an image finds its mask: ``key(stem)`` is the pairing key of a file name stem (None: it has none)."""

    pair_by: str
    key: Callable[[str], str | None]
    what: str  # completes "no mask …": how a mask would have matched

    def order(self, key: str) -> Any:
        """Sort key of a pairing key: plain names keep their name order (so existing carves do not change); numbered
        keys sort by number (``2`` before ``10``), so that index lists read as the files' numbers."""
        if self.pair_by == "stem":
            return key
        return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", key) if part]


def pairing(pair_by: str) -> Pairing:
    """The :class:`Pairing` of ``data.pair_by``: ``stem``, ``leading_number`` or a regular expression with one group."""
    if pair_by == "stem":
        return Pairing(pair_by, lambda stem: stem, "of the same name")
    pattern = r"^(\d+)" if pair_by == "leading_number" else pair_by
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"data.pair_by={pair_by!r} is not a valid regular expression ({error})") from error
    if regex.groups != 1:
        raise ConfigError(
            f"data.pair_by must be stem, leading_number or a regular expression with exactly one group, "
            f"e.g. '^(\\d+)_', got {pair_by!r}"
        )

    def key(stem: str) -> str | None:
        match = regex.search(stem)
        if match is None or match.group(1) is None:
            return None
        # "01" and "1" are the same number: DRIVE writes its test numbers with a leading zero.
        return str(int(match.group(1))) if pair_by == "leading_number" else match.group(1)

    what = "with the same leading number" if pair_by == "leading_number" else f"with the same data.pair_by={pair_by!r}"
    return Pairing(pair_by, key, what)


@dataclass(frozen=True)
class SplitFolders:
    """The folders of one split: images, their masks and optionally their valid-region masks."""

    images: Path
    masks: Path
    valid: Path | None = None


def missing_folder_fix(key: str, layout: str | None) -> str:
    return f"data.root must hold the dataset as published ({layout})" if layout else f"set data.root and {key}"


def files_by_key(
    folder: Path, suffixes: Sequence[str], key: str, pair: Pairing, layout: str | None = None
) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case), by pairing key; ``key`` names the config key."""
    if not folder.is_dir():
        raise DataError(f"{key} folder {folder} does not exist; {missing_folder_fix(key, layout)}")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.suffix.lower() in suffixes):
            continue
        name = pair.key(path.stem)
        if name is None:
            raise DataError(
                f"{path} in {key} has no pairing key under data.pair_by={pair.pair_by} "
                f"(no match in {path.stem!r}); rename or remove the file, or change data.pair_by"
            )
        if name in files:
            share = f"the name {name!r}" if pair.pair_by == "stem" else f"the pairing key {name!r}"
            raise DataError(f"{files[name]} and {path} in {key} share {share}; keep one of them")
        files[name] = path
    if not files:
        raise DataError(f"{key} folder {folder} has no {'/'.join(suffixes)} files; put the files there")
    return files


def pair_files(
    folders: SplitFolders, split: str, pair: Pairing, layout: str | None = None
) -> tuple[list[Path], list[Path], list[Path] | None]:
    """Image, mask and valid-region mask (or None) files of one split, matched by pairing key, in key order."""
    images = files_by_key(folders.images, IMAGE_SUFFIXES, f"data.{split}.images", pair, layout)
    masks = files_by_key(folders.masks, MASK_SUFFIXES, f"data.{split}.masks", pair, layout)
    if unmatched := sorted(set(images) - set(masks), key=pair.order):
        raise DataError(
            f"{len(unmatched)} images in {folders.images} have no mask {pair.what} in {folders.masks}: "
            f"{listing([images[name].name for name in unmatched])}; add their masks or remove the images"
        )
    if unmatched := sorted(set(masks) - set(images), key=pair.order):
        raise DataError(
            f"{len(unmatched)} masks in {folders.masks} have no image {pair.what} in {folders.images}: "
            f"{listing([masks[name].name for name in unmatched])}; add their images or remove the masks"
        )
    names = sorted(images, key=pair.order)
    valid = None
    if folders.valid is not None:
        # Extra valid-region masks are harmless (nothing reads them); a missing one would silently count the
        # whole image, so it is an error.
        regions = files_by_key(folders.valid, MASK_SUFFIXES, f"data.{split}.valid", pair, layout)
        if unmatched := [name for name in names if name not in regions]:
            raise DataError(
                f"{len(unmatched)} images in {folders.images} have no valid-region mask {pair.what} in "
                f"{folders.valid}: {listing([images[name].name for name in unmatched])}; "
                "add their valid-region masks or remove the images"
            )
        valid = [regions[name] for name in names]
    return [images[name] for name in names], [masks[name] for name in names], valid


def parse_indices(split: str, entries: Any) -> list[int]:
    """``data.splits.<split>``: a list of indices and ``"first-last"`` ranges (inclusive) → sorted unique indices."""
    if isinstance(entries, (str, int)) or not isinstance(entries, Sequence):
        entries = [entries]
    indices: set[int] = set()
    for entry in entries:
        text = str(entry).strip()
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
        if match and int(match.group(1)) <= int(match.group(2)):
            indices.update(range(int(match.group(1)), int(match.group(2)) + 1))
        elif text.isdigit():
            indices.add(int(text))
        else:
            raise ConfigError(
                f"data.splits.{split} must list indices and first-last ranges, e.g. [0-19, 25], got {entry!r}"
            )
    return sorted(indices)


def parse_splits(splits: Mapping[str, Any] | None) -> dict[str, list[int]]:
    """``data.splits`` checked: known split names, train and val present, no index in two splits."""
    if not splits:
        return {}
    if unknown := sorted(set(splits) - set(SPLITS)):
        raise ConfigError(f"data.splits has unknown splits {', '.join(unknown)}; use train, val and test")
    if "train" not in splits or "val" not in splits:
        raise ConfigError("data.splits must give both train and val index lists (test is optional: val is tested)")
    parsed = {split: parse_indices(split, entries) for split, entries in splits.items()}
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        if both := sorted(set(parsed.get(first, ())) & set(parsed.get(second, ()))):
            raise ConfigError(
                f"data.splits.{first} and data.splits.{second} share indices {listing(both)}; a sample is in one split"
            )
    return parsed


class FolderDataModule(SegmentationDataModule):
    """Per-split image and mask folders under ``root``: ``train``, ``val`` and ``test`` map ``images``, ``masks`` and
    optionally ``valid`` to folders (relative to ``root`` or absolute); a split whose ``images`` is null is absent.

    ``name`` is the data config's name and ``layout`` the published layout, both for messages (``data=drive``).
    """

    def __init__(
        self,
        root: str | Path | None,
        train: Mapping[str, str | None],
        val: Mapping[str, str | None] | None = None,
        test: Mapping[str, str | None] | None = None,
        val_fraction: float | None = None,
        split_seed: int = 0,
        splits: Mapping[str, Any] | None = None,
        pair_by: str = "stem",
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        mask_mapping: Mapping[int, int] | None = None,
        name: str = "folder",
        layout: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name, self.layout = name, layout
        if root is None:
            where = f" ({layout})" if layout else ""
            raise ConfigError(
                f"data={name} needs data.root, the folder that holds the dataset{where}: add data.root=<path>"
            )
        if num_classes is None:
            raise ConfigError(
                f"data={name} needs data.num_classes, the number of classes in the masks (ignore_index not counted): "
                "add data.num_classes=<n>"
            )
        super().__init__(num_classes=num_classes, class_names=class_names, **kwargs)
        self.root = Path(root)
        self.pairing = pairing(str(pair_by))
        self.folders = {
            split: self.split_folders(split, given) for split, given in (("train", train), ("val", val), ("test", test))
        }
        if self.folders["train"] is None:
            raise ConfigError(f"data={name} needs data.train.images and data.train.masks, the training folders")
        self.index_splits = parse_splits(splits)
        if self.index_splits and val_fraction is not None:
            raise ConfigError("data.splits and data.val_fraction both carve validation from train; set only one")
        if both := [split for split in self.index_splits if split != "train" and self.folders[split] is not None]:
            raise ConfigError(
                f"data.{both[0]} folders and data.splits.{both[0]} both give the {both[0]} split; "
                f"set data.{both[0]}.images=null data.{both[0]}.masks=null or drop data.splits.{both[0]}"
            )
        if self.folders["val"] is None and val_fraction is None and not self.index_splits:
            raise ConfigError(
                f"data={name} has no validation set; set data.val.images and data.val.masks, "
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

    def split_folders(self, split: str, given: Mapping[str, str | None] | None) -> SplitFolders | None:
        """The folders of a split, or None when the split has no folders."""
        given = given or {}
        images, masks, valid = given.get("images"), given.get("masks"), given.get("valid")
        if images is None and masks is None:
            if valid is not None:
                raise ConfigError(f"data.{split}.valid is set but data.{split}.images is not; set both or neither")
            return None
        if images is None or masks is None:
            raise ConfigError(f"data.{split}.images and data.{split}.masks must be given together; set both or neither")
        return SplitFolders(self.root / images, self.root / masks, self.root / valid if valid is not None else None)

    def samples(self, split: str) -> CheckedSamples:
        folders = self.folders[split]
        assert folders is not None
        images, masks, valid = pair_files(folders, split, self.pairing, self.layout)
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
            valid=valid,
        )

    def check_root(self) -> None:
        if not self.root.is_dir():
            fix = f"it must hold the dataset as published ({self.layout})" if self.layout else "point it at your data"
            raise DataError(f"data.root {self.root} does not exist or is not a folder; {fix}")

    def carved(self, whole: CheckedSamples) -> dict[str, list[int]]:
        """Index lists into the training folders' pairs for the splits carved from them."""
        if self.index_splits:
            count = len(whole)
            for split, indices in self.index_splits.items():
                if indices and indices[-1] >= count:
                    raise ConfigError(
                        f"data.splits.{split} has index {indices[-1]} but {self.folders['train'].images} "  # type: ignore[union-attr]
                        f"has {count} image pairs (indices 0–{count - 1}); fix data.splits"
                    )
            return self.index_splits
        train, val = split_indices(len(whole), self.val_fraction, self.split_seed)  # type: ignore[arg-type]
        return {"train": train, "val": val}

    def has_val_folders(self) -> bool:
        """Whether the validation images folder is given and exists (else validation must be carved)."""
        return self.folders["val"] is not None and self.folders["val"].images.is_dir()

    def training_pool(self) -> Dataset:
        """The training images before validation is carved from them: the training folders' pairs, or their
        ``data.splits.train`` subset."""
        self.check_root()
        whole = self.samples("train")
        return Subset(whole, self.carved(whole)["train"]) if self.index_splits else whole

    def build_datasets(self, stage: str | None) -> dict[str, Dataset]:
        self.check_root()
        wanted = self.splits_for(stage)
        tests_on_val = self.folders["test"] is None and "test" not in self.index_splits
        val_for_test = "test" in wanted and tests_on_val
        needed = [split for split in SPLITS if split in wanted or (split == "val" and val_for_test)]
        if self.index_splits:
            carved_splits = set(self.index_splits)
        else:
            carved_splits = {"train", "val"} if self.val_fraction is not None else set()
        # The training folders are only listed when a needed split comes from them (a test run may lack them).
        whole = self.samples("train") if carved_splits & set(needed) else None
        carved = self.carved(whole) if whole is not None else {}
        datasets: dict[str, Dataset] = {}
        for split in needed:
            if split in carved:
                datasets[split] = Subset(whole, carved[split])  # type: ignore[arg-type]
            elif self.folders[split] is not None:
                datasets[split] = self.samples(split)
            elif split == "test":
                log.info("data=%s has no test split (data.test.images, data.splits.test); testing on val", self.name)
                datasets["test"] = datasets["val"]
        return {split: datasets[split] for split in wanted}
