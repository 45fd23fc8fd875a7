"""Train a segmentation model: ``python scripts/train.py [experiment=quickstart] [decoder=direct] [key=value ...]``.

Fits, tests the final weights and the best checkpoint, and writes metrics.json and per_image*.csv in the run directory
(logs/train/runs/<time>/).
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("UPSEG_ROOT", str(REPO))

from upseg.cli.overrides import check_command_line  # noqa: E402
from upseg.cli.task import run_task  # noqa: E402
from upseg.training.train import train  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_task(train, cfg)
    return metrics.get("val/mIoU") if metrics else None  # the objective for Hydra sweepers that optimise


if __name__ == "__main__":
    check_command_line(REPO / "configs", "train", sys.argv[1:])  # a missing extra, a key or option not in the configs
    main()
