"""Compose the real Hydra configs (as lightning-hydra-template's tests do), sized for a CPU test run."""

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

# A few tiny batches of shapes on the CPU, no progress bar.
FAST = [
    "experiment=quickstart",
    "data.num_train=8",
    "data.num_val=4",
    "data.num_test=4",
    "data.image_size=32",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
]


def compose_train_config(tmp_path: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``configs/train.yaml`` with ``overrides``, its Hydra runtime set and outputs under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
        cfg.paths.data_dir = str(tmp_path / "data")
        del cfg.hydra  # as in a real run: Hydra's own node lives in HydraConfig, not in the task's config
    return cfg


@pytest.fixture
def train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_config(*overrides, fast=True)``: a composed training config writing into a fresh temporary folder."""

    def make(*overrides: str, fast: bool = True, output: Path | None = None) -> DictConfig:
        return compose_train_config(output or tmp_path, [*(FAST if fast else []), *overrides])

    yield make
    GlobalHydra.instance().clear()
