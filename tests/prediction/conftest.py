"""One tiny quick-start model trained once for the prediction tests, tested after training with sliding windows and
flips, and its test images written as PNG files with their label masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from PIL import Image

from tests.helpers.configs import FAST, compose_config
from upseg.training.train import train

TINY_NET = ["model.net.depth=2", "model.net.base_width=8"]  # size multiple 4
SLIDE_FLIP = ["inference.mode=slide", "inference.crop=16", "inference.stride=8", "inference.flip=true"]


@dataclass(frozen=True)
class Trained:
    summary: dict[str, Any]
    checkpoint: Path  # the final weights, which the test after training scored
    images: Path  # the test split as PNG files 0.png … 5.png
    labels: Path  # their masks, same names
    run: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    folder = tmp_path_factory.mktemp("trained")
    overrides = [*FAST, "data.num_train=24", "data.num_test=6", "trainer.max_epochs=2", *TINY_NET, *SLIDE_FLIP]
    cfg = compose_config("train", folder / "run", overrides)
    summary = train(cfg)
    datamodule = instantiate(cfg.data)
    test = datamodule.raw_dataset("test")
    images, labels = folder / "images", folder / "labels"
    images.mkdir()
    labels.mkdir()
    for index in range(len(test)):
        image, mask = test[index]
        Image.fromarray(image).save(images / f"{index}.png")
        Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(labels / f"{index}.png")
    GlobalHydra.instance().clear()
    return Trained(summary, Path(summary["last_ckpt"]), images, labels, folder / "run")
