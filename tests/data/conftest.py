"""The real Hydra training config, composed to train for a few CPU steps on the tiny datasets of
:mod:`tests.helpers.datasets`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers.configs import compose_config

# One quick CPU epoch of a small U-Net on a fixture dataset.
TINY_RUN = (
    "model=unet_small",
    "model.net.depth=2",
    "model.net.base_width=8",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.crop_size=32",
)


@pytest.fixture
def train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_config(*overrides, tiny=True)``: the training config for a tiny CPU run writing into ``tmp_path/run``."""

    def make(*overrides: str, tiny: bool = True) -> DictConfig:
        return compose_config("train", tmp_path / "run", [*(TINY_RUN if tiny else ()), *overrides])

    yield make
    GlobalHydra.instance().clear()
