"""data=pets, voc, voc_aug and folder: what each reads from tiny fixture datasets; training through the real configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset

from tests.helpers.datasets import (
    FOLDER_CLASSES,
    PETS_TEST,
    PETS_TRAINVAL,
    SBD_OWN_LABEL,
    SBD_TRAIN,
    SBD_VAL,
    SIZES,
    VOC_TRAIN,
    VOC_VAL,
    voc_label,
    write_folder,
    write_pets,
    write_sbd,
    write_voc,
)
from upseg.data import FolderDataModule, PetsDataModule, VOCAugDataModule, VOCDataModule
from upseg.data.samples import relabel
from upseg.training.build import build_module
from upseg.training.train import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int64)


def file_stems(dataset) -> list[str]:
    """The image stems of a (possibly subset or concatenated) checked dataset, in sample order."""
    if isinstance(dataset, Subset):
        return [file_stems(dataset.dataset)[index] for index in dataset.indices]
    if isinstance(dataset, ConcatDataset):
        return [stem for part in dataset.datasets for stem in file_stems(part)]
    return [path.stem for path in dataset.images]


def datamodule(train_config, *overrides: str):
    return instantiate(train_config(*overrides).data)


def test_pets_is_the_default_dataset(train_config):
    cfg = train_config(tiny=False)
    assert cfg.data._target_ == "upseg.data.PetsDataModule"


@pytest.mark.parametrize("binary", [False, True])
def test_pets_trimaps_become_pet_background_border_or_binary_with_border_ignored(train_config, tmp_path, binary):
    trimaps = write_pets(tmp_path)
    cfg = train_config("data=pets", f"data.root={tmp_path}", "data.download=false", f"data.binary={binary}")
    expected_classes = ["pet", "background"] if binary else ["pet", "background", "border"]
    data = instantiate(cfg.data)
    assert isinstance(data, PetsDataModule) and data.class_names == expected_classes
    # The model takes its label space from the datamodule: data.binary alone changes what it predicts.
    module = build_module(cfg.model, data)
    assert module.class_names == expected_classes
    assert module.net(torch.zeros(1, 3, 32, 32)).shape[1] == len(expected_classes)
    assert data.palette.shape == (len(expected_classes), 3) and data.palette.dtype == np.uint8

    border = data.ignore_index if binary else 2
    test = data.raw_dataset("test")
    assert file_stems(test) == list(PETS_TEST)
    for (image, mask), stem in zip(test, PETS_TEST, strict=True):
        trimap = read_mask(trimaps / f"{stem}.png")
        expected = np.select([trimap == 1, trimap == 2, trimap == 3], [0, 1, border], default=-1)
        assert image.dtype == np.uint8 and image.shape == (*trimap.shape, 3)
        assert mask.dtype == np.int64 and np.array_equal(mask, expected)


def test_pets_trainval_is_split_by_val_fraction_and_split_seed(train_config, tmp_path):
    write_pets(tmp_path)

    def split(seed: int, fraction: float = 0.34) -> tuple[list[str], list[str]]:
        data = datamodule(
            train_config,
            "data=pets",
            f"data.root={tmp_path}",
            "data.download=false",
            f"data.val_fraction={fraction}",
            f"data.split_seed={seed}",
        )
        return file_stems(data.raw_dataset("train")), file_stems(data.raw_dataset("val"))

    train_part, val_part = split(0)
    assert sorted(train_part + val_part) == sorted(PETS_TRAINVAL)
    assert len(val_part) == round(0.34 * len(PETS_TRAINVAL))
    assert split(0) == (train_part, val_part)
    assert len({tuple(split(seed)[1]) for seed in range(6)}) > 1  # the seed changes which images are held out


def test_voc_masks_keep_their_classes_outlines_ignored_and_val_serves_as_test(train_config, tmp_path):
    voc = write_voc(tmp_path)
    data = datamodule(train_config, "data=voc", f"data.root={tmp_path}", "data.download=false")
    assert isinstance(data, VOCDataModule)
    assert data.num_classes == 21 and data.ignore_index == 255
    assert data.class_names[0] == "background" and data.class_names[15] == "person" and len(data.class_names) == 21
    # The VOC devkit's colours: black background, aeroplane (128, 0, 0), person (192, 128, 128), tv (0, 64, 128).
    assert data.palette.shape == (21, 3) and data.palette.dtype == np.uint8
    assert data.palette[[0, 1, 15, 20]].tolist() == [[0, 0, 0], [128, 0, 0], [192, 128, 128], [0, 64, 128]]
    # The fixture's masks are written with that palette, so VOC's own PNG palettes agree with it.
    png_palette = np.array(Image.open(voc / "SegmentationClass" / f"{VOC_VAL[0]}.png").getpalette()[: 21 * 3])
    assert np.array_equal(png_palette.reshape(21, 3), data.palette)

    assert file_stems(data.raw_dataset("train")) == list(VOC_TRAIN)
    val, test = data.raw_dataset("val"), data.raw_dataset("test")
    assert file_stems(val) == file_stems(test) == list(VOC_VAL)
    for (_, mask), stem in zip(val, VOC_VAL, strict=True):
        assert np.array_equal(mask, read_mask(voc / "SegmentationClass" / f"{stem}.png"))
        assert 255 in mask and voc_label(stem) in mask


def test_voc_aug_trains_on_sbd_and_voc_train_without_voc_val_each_image_once(train_config, tmp_path):
    write_voc(tmp_path)
    write_sbd(tmp_path / "SBD")
    data = datamodule(train_config, "data=voc_aug", f"data.root={tmp_path}", "data.download=false")
    assert isinstance(data, VOCAugDataModule) and data.sbd_root == tmp_path / "SBD"

    expected = (set(VOC_TRAIN) | set(SBD_TRAIN) | set(SBD_VAL)) - set(VOC_VAL)
    train_set = data.raw_dataset("train")
    stems = file_stems(train_set)
    assert sorted(stems) == sorted(expected)
    for (_, mask), stem in zip(train_set, stems, strict=True):
        objects = set(np.unique(mask).tolist()) - {0, 255}
        assert objects == {voc_label(stem)}  # an image VOC train also has keeps VOC's mask, not SBD's
        assert SBD_OWN_LABEL not in objects
    assert file_stems(data.raw_dataset("val")) == list(VOC_VAL)


def test_folder_pairs_masks_by_stem_reads_palette_pngs_as_indices_and_maps_values(train_config, tmp_path):
    root = write_folder(tmp_path / "mine", {"train": 4, "val": 2}, image_suffix=".jpg", palette=True)
    data = datamodule(
        train_config,
        "data=folder",
        f"data.root={root}",
        f"data.num_classes={FOLDER_CLASSES}",
        "data.class_names=[sky,road,car]",
        "data.mask_mapping={1: 2, 2: 1}",
    )
    assert isinstance(data, FolderDataModule) and data.class_names == ["sky", "road", "car"]
    for split in ("train", "val"):
        dataset = data.raw_dataset(split)
        for (image, mask), stem in zip(dataset, file_stems(dataset), strict=True):
            raw = read_mask(root / split / "masks" / f"{stem}.png")  # palette indices
            assert np.array_equal(mask, np.select([raw == 1, raw == 2], [2, 1], default=raw))
            assert image.shape == (*raw.shape, 3)
    # No test folders: the val set is tested.
    assert file_stems(data.raw_dataset("test")) == file_stems(data.raw_dataset("val"))


def test_folder_carves_val_from_train_by_val_fraction(train_config, tmp_path):
    root = write_folder(tmp_path / "mine", {"train": 6, "test": 2})
    overrides = ("data=folder", f"data.root={root}", "data.num_classes=3", "data.val_fraction=0.5")
    data = datamodule(train_config, *overrides, "data.test.images=test/images", "data.test.masks=test/masks")
    train_part, val_part = file_stems(data.raw_dataset("train")), file_stems(data.raw_dataset("val"))
    assert len(train_part) == len(val_part) == 3 and not set(train_part) & set(val_part)
    assert sorted(train_part + val_part) == sorted(path.stem for path in (root / "train" / "images").iterdir())
    assert file_stems(data.raw_dataset("test")) == sorted(path.stem for path in (root / "test" / "images").iterdir())


def test_eval_batches_of_differently_sized_images_are_padded_with_ignore_index(train_config, tmp_path):
    root = write_folder(tmp_path / "mine", {"train": 2, "val": 2})
    data = datamodule(train_config, "data=folder", f"data.root={root}", "data.num_classes=3", "data.batch_size=2")
    data.setup("fit")
    raw = [data.raw_dataset("val")[i] for i in range(2)]
    assert {mask.shape for _, mask in raw} == set(SIZES)
    images, masks, indices = next(iter(data.val_dataloader()))
    assert indices.tolist() == [0, 1]  # the batch carries each sample's dataset index
    height, width = max(h for h, _ in SIZES), max(w for _, w in SIZES)
    assert images.shape == (2, 3, height, width) and masks.shape == (2, height, width)
    for (_, mask), padded, image in zip(raw, masks.numpy(), images.numpy(), strict=True):
        h, w = mask.shape
        assert np.array_equal(padded[:h, :w], mask)  # eval at full resolution, values untouched
        outside = np.ones_like(padded, dtype=bool)
        outside[:h, :w] = False
        assert (padded[outside] == data.ignore_index).all() and (image[:, outside] == 0).all()


@pytest.mark.parametrize(
    "dataset,overrides",
    [
        ("pets", ["data.download=false"]),
        ("pets", ["data.download=false", "data.binary=true"]),
        ("voc", ["data.download=false"]),
        ("voc_aug", ["data.download=false"]),
        ("folder", ["data.num_classes=3", "data.class_names=[a,b,c]"]),
    ],
)
def test_training_runs_end_to_end_on_each_dataset(train_config, tmp_path, dataset, overrides):
    root = tmp_path / "data"
    if dataset == "folder":
        write_folder(root, {"train": 3, "val": 2})
    else:
        (write_pets if dataset == "pets" else write_voc)(root)
    if dataset == "voc_aug":
        write_sbd(root / "SBD")
    cfg = train_config(f"data={dataset}", f"data.root={root}", *overrides)
    summary = train(cfg)

    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written == json.loads(json.dumps(summary))
    class_names = instantiate(cfg.data).class_names
    assert list(written["test/IoU"]) == class_names
    assert 0.0 <= written["test/mIoU"] <= 1.0 and written["epochs"] == 1


@pytest.mark.parametrize("name", ["base", "pets", "voc", "voc_aug", "folder", "drive", "isbi2012"])
def test_every_data_config_key_has_a_comment(name):
    lines = (CONFIGS / "data" / f"{name}.yaml").read_text().splitlines()
    keys = [line for line in lines if line.strip() and not line.lstrip().startswith(("#", "-"))]
    uncommented = [line for line in keys if "#" not in line and line.split(":")[0] not in ("_target_", "defaults")]
    assert keys and not uncommented
    assert yaml.safe_load("\n".join(lines))  # and the file is valid YAML


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_relabel_maps_raw_values_and_reports_the_ones_that_are_no_class(dtype):
    raw = np.random.default_rng(0).choice([0, 1, 2, 7, 255], size=(9, 11)).astype(dtype)
    labels, bad = relabel(raw, {7: 1}, keep_unmapped=True, num_classes=3, ignore_index=255)
    assert labels.dtype == np.int64 and np.array_equal(labels, np.where(raw == 7, 1, raw)) and bad == []
    _, bad = relabel(raw, {7: 1}, keep_unmapped=True, num_classes=2, ignore_index=255)
    assert bad == [2]
    _, bad = relabel(raw, {0: 0, 1: 1}, keep_unmapped=False, num_classes=3, ignore_index=255)
    assert bad == [2, 7, 255]  # without keep_unmapped only the mapping's keys are valid


def test_samples_per_epoch_serves_fresh_crops_and_cache_decodes_each_image_once():
    import torch

    from upseg.data.datamodule import CachedSamples, TransformedDataset

    decoded = []

    class Counting(Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            decoded.append(index)
            return np.full((8, 8, 3), index, dtype=np.uint8), np.full((8, 8), index % 2)

    def as_tensors(image: np.ndarray, mask: np.ndarray) -> dict:
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(mask)}

    served = TransformedDataset(CachedSamples(Counting()), as_tensors, length=10)
    assert len(served) == 10
    assert [int(served[i][0][0, 0, 0]) for i in range(10)] == [i % 3 for i in range(10)]
    assert sorted(decoded) == [0, 1, 2]  # ten samples served, three images decoded
