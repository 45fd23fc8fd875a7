"""data=folder, data=drive and data=isbi2012 on tiny fixtures written in the formats real datasets ship: TIFF, GIF
(greyscale and palette), BMP and 16-bit PNG files, field-of-view masks, names paired by their leading number, and
fixed index splits; bad folders and files stop scripts/train.py with one line and status 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from tests.helpers.datasets import (
    DRIVE_PALETTE_GIF,
    DRIVE_TEST,
    DRIVE_TRAIN,
    ISBI_SLICES,
    drive_vessels,
    field_of_view,
    isbi_membranes,
    rectangle_mask,
    size_of,
    write_drive,
    write_isbi,
)
from upseg.cli.task import user_error
from upseg.data.folder import parse_indices
from upseg.data.samples import rgb_array
from upseg.errors import ConfigError, DataError
from upseg.training.train import train


def stems(dataset) -> list[str]:
    return (
        [dataset.dataset.images[i].stem for i in dataset.indices]
        if hasattr(dataset, "indices")
        else [path.stem for path in dataset.images]
    )


def save_mask(path: Path, mask: np.ndarray, kind: str) -> None:
    """``mask`` (class indices) as a mask file of ``kind``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "png16":
        Image.fromarray(mask.astype(np.uint16)).save(path)  # mode I;16
    elif kind == "gif_palette":
        picture = Image.fromarray(mask.astype(np.uint8)).convert("P")
        picture.putpalette([0, 0, 0, 200, 30, 30, 30, 200, 30] + [255, 255, 255] * 253)
        picture.save(path, optimize=False)  # keep the indices (Pillow would renumber the colours it keeps)
    elif kind == "gif":
        Image.fromarray(mask.astype(np.uint8)).save(path, optimize=False)
    else:  # tif, bmp: 8-bit greyscale
        Image.fromarray(mask.astype(np.uint8)).save(path)


def save_image(path: Path, pixels: np.ndarray, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "png16_grey":
        Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(path)  # 16-bit greyscale, full range
    elif kind == "gif":
        Image.fromarray(pixels).convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    else:
        Image.fromarray(pixels).save(path)


MASK_KINDS = {"png16": ".png", "gif": ".gif", "gif_palette": ".gif", "tif": ".tif", "bmp": ".bmp"}
IMAGE_KINDS = {"tif": ".tif", "bmp": ".bmp", "gif": ".gif", "png16_grey": ".png"}


@pytest.mark.parametrize("mask_kind,image_kind", [*zip(MASK_KINDS, [*IMAGE_KINDS, "tif"], strict=True)])
def test_folder_reads_masks_and_images_in_every_published_format(train_config, tmp_path, mask_kind, image_kind):
    root = tmp_path / "mine"
    expected = {}
    for index in range(4):
        split = "train" if index < 3 else "val"
        mask = rectangle_mask(size_of(index), 1 + index % 2, 0).astype(np.int64)
        mask[0, :] = 255 if mask_kind != "png16" else 1000  # 16-bit values beyond 8 bits, mapped below
        name = f"scan_{index}"
        save_mask(root / split / "masks" / f"{name}{MASK_KINDS[mask_kind]}", mask, mask_kind)
        pixels = np.stack([mask.astype(np.uint8) * 60] * 3, axis=-1)
        save_image(root / split / "images" / f"{name}{IMAGE_KINDS[image_kind]}", pixels, image_kind)
        expected[name] = np.where(mask == 1000, 255, mask)
    overrides = ["data=folder", f"data.root={root}", "data.num_classes=3"]
    if mask_kind == "png16":
        overrides.append("data.mask_mapping={1000: 255}")
    data = instantiate(train_config(*overrides).data)
    for split in ("train", "val"):
        dataset = data.raw_dataset(split)
        for (image, mask), name in zip(dataset, stems(dataset), strict=True):
            assert mask.dtype == np.int64 and np.array_equal(mask, expected[name]), (split, name)
            assert image.shape == (*mask.shape, 3) and image.dtype == np.uint8
            if image_kind == "png16_grey":
                assert np.array_equal(image[..., 0], image[..., 2]) and image.max() > 100  # scaled, not clipped


def test_16_bit_and_greyscale_images_become_8_bit_rgb():
    wide = Image.fromarray(np.array([[0, 257, 65535]], dtype=np.uint16))
    assert rgb_array(wide).tolist() == [[[0] * 3, [1] * 3, [255] * 3]]
    grey = Image.fromarray(np.array([[7, 200]], dtype=np.uint8))
    assert rgb_array(grey).tolist() == [[[7] * 3, [200] * 3]]


def test_drive_pairs_by_leading_number_and_ignores_outside_the_field_of_view(train_config, tmp_path):
    root = write_drive(tmp_path / "DRIVE")
    data = instantiate(train_config("data=drive", f"data.root={root}").data)
    assert data.class_names == ["background", "vessel"] and data.num_classes == 2
    train_set, val_set, test_set = (data.raw_dataset(split) for split in ("train", "val", "test"))
    assert len(val_set) == 1 and len(train_set) == len(DRIVE_TRAIN) - 1  # val_fraction 0.2 of 5
    assert sorted(stems(train_set) + stems(val_set)) == [f"{n}_training" for n in DRIVE_TRAIN]
    assert stems(test_set) == [f"{n:02d}_test" for n in DRIVE_TEST]
    whole = train_set.dataset
    for index, number in enumerate(DRIVE_TRAIN):
        assert whole.masks[index].name == f"{number}_manual1.gif"
        assert whole.valid[index].name == f"{number}_training_mask.gif"
        image, mask = whole[index]
        fov = field_of_view(size_of(index)) > 0
        vessels = drive_vessels(size_of(index), number) > 0
        assert image.shape == (*mask.shape, 3)
        assert (mask[~fov] == 255).all()  # outside the FOV: ignore_index
        assert np.array_equal(mask[fov], vessels[fov].astype(np.int64))  # 255 → 1, and the palette GIF's 1 stays 1
    assert DRIVE_PALETTE_GIF in DRIVE_TRAIN
    assert Image.open(root / "training" / "1st_manual" / f"{DRIVE_PALETTE_GIF}_manual1.gif").mode == "P"


def test_isbi2012_splits_the_slices_by_number(train_config, tmp_path):
    root = write_isbi(tmp_path / "isbi")
    data = instantiate(train_config("data=isbi2012", f"data.root={root}").data)
    assert data.class_names == ["membrane", "cell"]
    expected = {"train": range(0, 20), "val": range(20, 25), "test": range(25, 30)}
    for split, numbers in expected.items():
        dataset = data.raw_dataset(split)
        assert stems(dataset) == [str(n) for n in numbers]  # by number: 2 before 10
        image, mask = dataset[0]
        assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
        assert np.array_equal(mask, (isbi_membranes(mask.shape, numbers[0]) == 255).astype(np.int64))
    assert ISBI_SLICES == 30


def test_pair_by_a_regular_expression(train_config, tmp_path):
    root = tmp_path / "mine"
    for index, split in enumerate(("train", "train", "val")):
        mask = rectangle_mask(size_of(index), 1, 0)
        save_mask(root / split / "masks" / f"label-{index}-v2.png", mask, "tif")
        save_image(root / split / "images" / f"scan-{index}.tif", np.stack([mask * 90] * 3, -1), "tif")
    overrides = ["data=folder", f"data.root={root}", "data.num_classes=2", r"data.pair_by='-(\d+)'"]
    data = instantiate(train_config(*overrides).data)
    assert [path.name for path in data.raw_dataset("train").masks] == ["label-0-v2.png", "label-1-v2.png"]
    with pytest.raises(Exception) as caught:
        instantiate(train_config(*overrides[:-1], r"data.pair_by='(a)(b)'").data)
    assert isinstance(user_error(caught.value), ConfigError) and "exactly one group" in str(user_error(caught.value))


def test_index_splits_read_ranges_and_refuse_overlaps_and_out_of_range_indices(train_config, tmp_path):
    assert parse_indices("train", ["0-3", 7, "5"]) == [0, 1, 2, 3, 5, 7]
    with pytest.raises(ConfigError, match="first-last ranges"):
        parse_indices("train", ["3-1"])
    root = write_isbi(tmp_path / "isbi")
    with pytest.raises(Exception) as caught:
        instantiate(train_config("data=isbi2012", f"data.root={root}", "data.splits.val=[19-24]").data)
    assert "share indices 19" in str(user_error(caught.value))
    data = instantiate(train_config("data=isbi2012", f"data.root={root}", "data.splits.test=[25-30]").data)
    with pytest.raises(ConfigError, match=r"data.splits.test has index 30 but .* has 30 image pairs"):
        data.setup("test")


@pytest.mark.parametrize("dataset", ["drive", "isbi2012"])
def test_one_epoch_on_the_published_formats(train_config, tmp_path, dataset):
    root = (write_drive if dataset == "drive" else write_isbi)(tmp_path / dataset)
    summary = train(train_config(f"data={dataset}", f"data.root={root}", "data.crop_size=16"))
    assert summary["epochs"] == 1 and 0.0 <= summary["test/mIoU"] <= 1.0


# What goes wrong with a downloaded DRIVE or ISBI folder, and the one line that says so.
def break_drive(root: Path, damage: str) -> str:
    """Damage a DRIVE fixture's test split (or root); returns what the error line must contain."""
    if damage == "missing_subfolder":
        shutil.rmtree(root / "test" / "mask")
        return f"data.test.valid folder {root / 'test' / 'mask'} does not exist; data.root must hold"
    if damage == "no_manual":
        (root / "test" / "1st_manual" / "01_manual1.gif").unlink()
        return f"1 images in {root / 'test' / 'images'} have no mask with the same leading number"
    if damage == "no_fov":
        (root / "test" / "mask" / "02_test_mask.gif").unlink()
        return f"1 images in {root / 'test' / 'images'} have no valid-region mask with the same leading number"
    if damage == "bad_gif_value":
        path = root / "test" / "1st_manual" / "01_manual1.gif"
        values = np.asarray(Image.open(path)).copy()
        values[0, :3] = 128
        Image.fromarray(values).save(path, optimize=False)
        return f"mask {path} has values 128, which are neither a class index (0–1) nor ignore_index 255"
    assert damage == "missing_root"
    shutil.rmtree(root)
    return f"data.root {root} does not exist or is not a folder; it must hold the dataset as published"


@pytest.mark.parametrize("damage", ["missing_subfolder", "no_manual", "no_fov", "bad_gif_value", "missing_root"])
def test_script_names_a_broken_drive_folder_in_one_line(scripts, tmp_path, damage):
    root = write_drive(tmp_path / "DRIVE")
    expected = break_drive(root, damage)
    result = scripts.run(
        "train.py",
        "data=drive",
        f"data.root={root}",
        "data.num_workers=0",
        "train=false",  # test the initial weights: the damage is in the test split (train's is not even listed)
        "model=unet_small",
        "model.net.depth=2",
        "model.net.base_width=8",
        "trainer=cpu",
        *scripts.QUIET,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, last


def test_script_names_a_missing_isbi_label_folder_and_a_missing_root_setting(scripts, train_config, tmp_path):
    root = write_isbi(tmp_path / "isbi")
    shutil.rmtree(root / "label")
    common = ["model=unet_small", "trainer=cpu", *scripts.QUIET, f"hydra.run.dir={tmp_path / 'run'}"]
    result = scripts.run("train.py", "data=isbi2012", f"data.root={root}", "data.num_workers=0", *common)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: data.train.masks folder {root / 'label'} does not exist"), last
    assert "image/<n>.png and label/<n>.png" in last
    with pytest.raises(Exception) as caught:
        instantiate(train_config("data=drive").data)
    assert str(user_error(caught.value)).startswith("data=drive needs data.root")
    assert isinstance(user_error(caught.value), ConfigError) and not isinstance(user_error(caught.value), DataError)
