"""Evaluate a checkpoint: ``python scripts/evaluate.py ckpt_path=PATH [split=test] [data=<name> ...]``.

Rebuilds the model from the checkpoint alone, tests it at full resolution and writes metrics.json,
confusion_matrix.png and predictions.png to logs/evaluate/runs/<time>/.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("UPSEG_ROOT", str(Path(__file__).resolve().parents[1]))

from upseg.cli import run_task  # noqa: E402
from upseg.evaluate import evaluate  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_task(evaluate, cfg)


if __name__ == "__main__":
    main()
