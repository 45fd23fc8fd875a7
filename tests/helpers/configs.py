"""The real Hydra configs composed for tests (as lightning-hydra-template's tests do), with every output under a
test's own folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"

# A few tiny batches of shapes on the CPU, no progress bar.
FAST = (
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
)


def compose_config(config_name: str, output: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``configs/<config_name>.yaml`` with ``overrides``, its Hydra runtime set and every output under ``output``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output)
        cfg.paths.log_dir = str(output / "logs")
        cfg.paths.data_dir = str(output / "data")
        del cfg.hydra  # as in a real run: Hydra's own node lives in HydraConfig, not in the task's config
    return cfg
