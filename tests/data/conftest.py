"""The real Hydra training config, composed to train for a few CPU steps on the tiny datasets of
``dataset_fixtures``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(REPO / "configs")

# One quick CPU epoch of a small U-Net on a fixture dataset.
TINY_RUN = (
    "model=unet_small",
    "model.depth=2",
    "model.base_width=8",
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


def compose_train_config(output: Path, overrides: Sequence[str]) -> DictConfig:
    """``configs/train.yaml`` with ``overrides``, its Hydra runtime set and every output under ``output``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output)
        cfg.paths.log_dir = str(output / "logs")
        cfg.paths.data_dir = str(output / "data")
        del cfg.hydra
    return cfg


@pytest.fixture
def train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_config(*overrides, tiny=True)``: the training config for a tiny CPU run writing into ``tmp_path/run``."""

    def make(*overrides: str, tiny: bool = True) -> DictConfig:
        return compose_train_config(tmp_path / "run", [*(TINY_RUN if tiny else ()), *overrides])

    yield make
    GlobalHydra.instance().clear()
