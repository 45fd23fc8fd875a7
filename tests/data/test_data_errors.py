"""Missing, undownloadable, unreadable and inconsistent data stop with one sentence that names the thing and the fix,
in process, through DataLoader workers and through scripts/train.py."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.oxford_iiit_pet
import torchvision.datasets.sbd
import torchvision.datasets.voc
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import OxfordIIITPet, SBDataset

from tests.helpers.datasets import PETS_TEST, PETS_TRAINVAL, VOC_VAL, write_folder, write_pets, write_sbd, write_voc
from upseg.cli.task import one_line, user_error
from upseg.errors import ConfigError, DataError
from upseg.training.train import train

TORCHVISION_URLS = {
    "pets": [url for url, _ in OxfordIIITPet._RESOURCES],
    "voc": [torchvision.datasets.voc.DATASET_YEAR_DICT["2012"]["url"]],
    "voc_aug": [torchvision.datasets.voc.DATASET_YEAR_DICT["2012"]["url"], SBDataset.url],
}


def assert_one_sentence(message: str, *parts: str) -> None:
    assert "\n" not in message and message.count(". ") == 0, message
    for part in parts:
        assert part in message, (part, message)


def load_all(dataset) -> None:
    for index in range(len(dataset)):
        dataset[index]


@pytest.mark.parametrize("dataset", ["pets", "voc", "voc_aug"])
def test_a_missing_dataset_with_download_off_names_the_layout_the_url_and_the_offline_alternative(
    train_config, tmp_path, dataset
):
    if dataset == "voc_aug":
        write_voc(tmp_path)  # VOC is there, SBD is not
    data = instantiate(train_config(f"data={dataset}", f"data.root={tmp_path}", "data.download=false").data)
    with pytest.raises(DataError) as caught:
        data.prepare_data()
    layout = {"pets": "oxford-iiit-pet/images", "voc": "VOCdevkit/VOC2012/JPEGImages", "voc_aug": "cls/*.mat"}
    urls = TORCHVISION_URLS[dataset][-1:] if dataset == "voc_aug" else TORCHVISION_URLS[dataset]
    assert_one_sentence(str(caught.value), str(tmp_path), layout[dataset], *urls, "experiment=quickstart")
    assert "data.download=true" in str(caught.value)


@pytest.mark.parametrize("dataset", ["pets", "voc", "voc_aug"])
def test_a_failed_download_is_caught_and_names_what_torchvision_tried(train_config, tmp_path, monkeypatch, dataset):
    tried: list[str] = []

    def no_network(url: str, *args, **kwargs) -> None:
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    for module in (torchvision.datasets.oxford_iiit_pet, torchvision.datasets.voc, torchvision.datasets.sbd):
        monkeypatch.setattr(module, "download_and_extract_archive", no_network)
    if dataset == "voc_aug":
        write_voc(tmp_path)
    data = instantiate(train_config(f"data={dataset}", f"data.root={tmp_path}", "data.download=true").data)
    with pytest.raises(DataError) as caught:
        data.prepare_data()
    assert tried and set(tried) <= set(TORCHVISION_URLS[dataset])
    assert_one_sentence(
        str(caught.value), "failed", "Temporary failure in name resolution", *tried, "experiment=quickstart"
    )


def test_script_reports_a_missing_dataset_in_one_line(scripts, tmp_path):
    result = scripts.run(
        "train.py",
        "data=pets",
        f"data.root={tmp_path / 'nowhere'}",
        "data.download=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the Oxford-IIIT Pet dataset was not found in {tmp_path / 'nowhere'}")
    assert "experiment=quickstart" in last and OxfordIIITPet._RESOURCES[0][0] in last


def corrupt_trimap(trimaps: Path, stem: str, value: int) -> Path:
    path = trimaps / f"{stem}.png"
    trimap = np.asarray(Image.open(path)).copy()
    trimap[0, :3] = value
    Image.fromarray(trimap).save(path)
    return path


def test_script_reports_a_bad_mask_value_from_a_dataloader_worker_in_one_line(scripts, tmp_path):
    bad = corrupt_trimap(write_pets(tmp_path / "data"), PETS_TEST[0], 7)
    result = scripts.run(
        "train.py",
        "data=pets",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "data.num_workers=1",
        "train=false",  # test the initial weights: the test split holds the bad mask
        "model=unet_small",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: mask {bad} has values 7, which are not trimap values 1 (pet), 2 (background) or 3 (border); "
        "fix or remove the file"
    )


def pets_test_set(train_config, root: Path, *overrides: str):
    data = instantiate(train_config("data=pets", f"data.root={root}", "data.download=false", *overrides).data)
    return data.raw_dataset("test")


@pytest.mark.parametrize("which", ["image", "mask"])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "deleted"])
def test_an_unreadable_image_or_mask_is_named(train_config, tmp_path, which, damage):
    trimaps = write_pets(tmp_path)
    stem = PETS_TEST[1]
    path = (tmp_path / "oxford-iiit-pet" / "images" / f"{stem}.jpg") if which == "image" else trimaps / f"{stem}.png"
    if damage == "garbage":
        path.write_bytes(b"this is not a picture")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        path.unlink()
    test = pets_test_set(train_config, tmp_path)
    test[0]  # the other sample loads
    with pytest.raises(DataError) as caught:
        test[1]
    message = str(caught.value)
    expected_start = (
        f"{which} file {path} does not exist" if damage == "deleted" else f"cannot read {which} file {path}"
    )
    assert message.startswith(expected_start), message
    assert_one_sentence(message)


def test_a_mask_value_outside_the_classes_names_the_file_and_the_values(train_config, tmp_path):
    root = write_folder(tmp_path / "mine", {"train": 2, "val": 2})
    bad = root / "val" / "masks" / "img_003.png"
    mask = np.asarray(Image.open(bad)).copy()
    mask[1, :2], mask[2, :2] = 3, 9
    Image.fromarray(mask).save(bad)
    data = instantiate(train_config("data=folder", f"data.root={root}", "data.num_classes=3").data)
    val = data.raw_dataset("val")
    val[0]
    with pytest.raises(DataError) as caught:
        val[1]
    assert str(caught.value) == (
        f"mask {bad} has values 3, 9, which are neither a class index (0–2) nor ignore_index 255; "
        "fix the mask, or map those values to classes with data.mask_mapping"
    )
    # Mapped values are fine, and the message then says the mapping was applied.
    mapped = instantiate(
        train_config("data=folder", f"data.root={root}", "data.num_classes=3", "data.mask_mapping={3: 1}").data
    )
    with pytest.raises(DataError, match=r"has values 9, which .* after data.mask_mapping"):
        mapped.raw_dataset("val")[1]


def test_a_mask_of_another_size_than_its_image_is_named(train_config, tmp_path):
    trimaps = write_pets(tmp_path)
    path = trimaps / f"{PETS_TRAINVAL[0]}.png"
    trimap = np.asarray(Image.open(path))
    Image.fromarray(trimap[:-3, :-5]).save(path)
    data = instantiate(
        train_config("data=pets", f"data.root={tmp_path}", "data.download=false", "data.val_fraction=0.5").data
    )
    dataset = data.raw_dataset("train").dataset  # the whole trainval list, in file order
    with pytest.raises(DataError) as caught:
        dataset[0]
    height, width = trimap.shape
    image = tmp_path / "oxford-iiit-pet" / "images" / f"{PETS_TRAINVAL[0]}.jpg"
    assert str(caught.value) == (
        f"image {image} is {height}×{width} pixels but its mask {path} is {height - 3}×{width - 5}; "
        "a mask must have its image's size"
    )


def test_a_colour_mask_is_refused(train_config, tmp_path):
    write_voc(tmp_path)
    path = tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass" / f"{VOC_VAL[0]}.png"
    Image.open(path).convert("RGB").save(path)
    data = instantiate(train_config("data=voc", f"data.root={tmp_path}", "data.download=false").data)
    with pytest.raises(DataError, match=f"mask {path} has shape .* single-channel"):
        data.raw_dataset("val")[0]


def test_a_bad_sample_message_survives_a_dataloader_worker(train_config, tmp_path):
    bad = corrupt_trimap(write_pets(tmp_path), PETS_TEST[0], 0)
    test = pets_test_set(train_config, tmp_path)
    with pytest.raises(DataError) as in_process:
        test[0]
    batches = iter(DataLoader(test, batch_size=1, num_workers=1, collate_fn=lambda batch: batch))
    try:
        next(batches)
    except DataError as error:
        in_worker = error.with_traceback(None)  # lets `del` stop the worker now rather than a slow gc later
    else:
        pytest.fail("the bad sample loaded")
    del batches
    assert "Original Traceback" in str(in_worker)  # what the worker re-raises ...
    assert one_line(in_worker) == str(in_process.value)  # ... still ends in the message
    assert str(bad) in str(in_process.value) and "values 0," in str(in_process.value)


@pytest.mark.parametrize("split", ["images", "masks"])
def test_images_without_masks_and_masks_without_images_are_named(train_config, tmp_path, split):
    root = write_folder(tmp_path / "mine", {"train": 12, "val": 2})
    folder = root / "train" / split
    for path in sorted(folder.iterdir())[:10]:
        path.unlink()
    data = instantiate(train_config("data=folder", f"data.root={root}", "data.num_classes=3").data)
    with pytest.raises(DataError) as caught:
        data.setup("fit")
    message = str(caught.value)
    other = "masks" if split == "images" else "images"
    lonely = sorted(path.name for path in (root / "train" / other).iterdir())[:10]
    kind = {"images": "masks", "masks": "images"}[split]  # images deleted → masks without images
    assert message.startswith(f"10 {kind} in {root / 'train' / other} have no")
    assert all(name in message for name in lonely[:8]) and "and 2 more" in message
    assert_one_sentence(message)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["data=pets", "data.num_classes=5"], "data.num_classes=5 does not fit data.binary=false"),
        (["data=voc", "data.num_classes=20"], "PASCAL VOC has 21 classes"),
        (["data=folder", "data.num_classes=3"], "data=folder needs data.root"),
        (["data=folder", "data.root=/x"], "data=folder needs data.num_classes"),
        (["data=folder", "data.root=/x", "data.num_classes=3", "data.val.images=null", "data.val.masks=null"],
         "data.val_fraction=0.1"),
        (["data=folder", "data.root=/x", "data.num_classes=3", "data.val.masks=null"], "must be given together"),
    ],
)  # fmt: skip
def test_config_mistakes_are_config_errors(train_config, overrides, message):
    with pytest.raises(Exception) as caught:  # Hydra wraps what a target raises
        instantiate(train_config(*overrides).data)
    assert isinstance(user_error(caught.value), ConfigError) and message in str(user_error(caught.value))


def test_a_split_fraction_that_leaves_no_training_images_is_a_config_error(train_config, tmp_path):
    write_pets(tmp_path)
    cfg = train_config("data=pets", f"data.root={tmp_path}", "data.download=false", "data.val_fraction=0.95")
    with pytest.raises(ConfigError, match="leaves none for training"):
        train(cfg)


def test_voc_aug_with_sbd_present_reads_without_downloading(train_config, tmp_path, monkeypatch):
    """download=true only downloads what is missing (torchvision would re-extract an archive on every run)."""
    write_voc(tmp_path)
    write_sbd(tmp_path / "SBD")

    def offline(*args, **kwargs) -> None:
        raise AssertionError("nothing is missing, so nothing should be downloaded")

    for module in (torchvision.datasets.voc, torchvision.datasets.sbd):
        monkeypatch.setattr(module, "download_and_extract_archive", offline)
    data = instantiate(train_config("data=voc_aug", f"data.root={tmp_path}", "data.download=true").data)
    data.prepare_data()
    assert len(data.raw_dataset("val")) == len(VOC_VAL)
