"""Smoke tests on the real DRIVE and ISBI 2012 copies beside the repository (``../shared/datasets``), skipped where
they are absent: samples load with the published shapes and classes, the FOV and class fractions are DRIVE's and
ISBI's, and one tiny epoch trains and tests on each. Only the tests read ``../shared``; the project never does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from upseg.training.train import train

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
ROOTS = {"drive": SHARED / "drive", "isbi2012": SHARED / "isbi2012-membranes"}


def real_root(dataset: str) -> Path:
    root = ROOTS[dataset]
    if not root.is_dir():
        pytest.skip(f"no real copy of {dataset} at {root}")
    return root


def test_drive_samples_have_the_published_shape_fov_and_vessel_fractions(train_config):
    data = instantiate(train_config("data=drive", f"data.root={real_root('drive')}").data)
    sizes = {split: len(data.raw_dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 16, "val": 4, "test": 20}
    ignored, vessel = [], []
    for split in ("train", "test"):
        for index in (0, 1):
            image, mask = data.raw_dataset(split)[index]
            assert image.shape == (584, 565, 3) and mask.shape == (584, 565)
            assert set(np.unique(mask).tolist()) == {0, 1, 255}
            ignored.append((mask == 255).mean())
            vessel.append((mask == 1).sum() / (mask != 255).sum())
    # DRIVE's FOV covers about 69 % of a photo; vessels are about 12 % of the FOV.
    print(f"DRIVE ignored (outside FOV) {ignored}, vessel share of FOV {vessel}")
    assert min(ignored) > 0.25 and max(ignored) < 0.40, ignored
    assert min(vessel) > 0.07 and max(vessel) < 0.18, vessel


def test_isbi2012_samples_have_the_published_shape_and_membrane_fraction(train_config):
    data = instantiate(train_config("data=isbi2012", f"data.root={real_root('isbi2012')}").data)
    sizes = {split: len(data.raw_dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 20, "val": 5, "test": 5}
    membrane = []
    for split in ("train", "val", "test"):
        image, mask = data.raw_dataset(split)[0]
        assert image.shape == (512, 512, 3) and (image[..., 0] == image[..., 2]).all()  # greyscale, repeated
        assert set(np.unique(mask).tolist()) == {0, 1}
        membrane.append((mask == 0).mean())
    print(f"ISBI membrane share {membrane}")
    assert min(membrane) > 0.15 and max(membrane) < 0.30, membrane  # membranes: about 22 % of the pixels


@pytest.mark.parametrize("dataset", ["drive", "isbi2012"])
def test_one_tiny_epoch_on_the_real_copy(train_config, dataset):
    cfg = train_config(
        f"data={dataset}",
        f"data.root={real_root(dataset)}",
        "data.crop_size=64",
        "data.eval_batch_size=1",
        "trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
    )
    summary = train(cfg)
    assert summary["epochs"] == 1 and 0.0 <= summary["test/mIoU"] <= 1.0
    assert set(summary["test/IoU"]) == ({"background", "vessel"} if dataset == "drive" else {"membrane", "cell"})
