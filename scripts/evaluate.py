"""Evaluate a checkpoint: ``python scripts/evaluate.py ckpt_path=PATH [split=test] [data=<name> ...]``.

Rebuilds the model from the checkpoint alone, tests it at full resolution and writes metrics.json,
confusion_matrix.png and predictions.png to logs/evaluate/runs/<time>/.
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
from upseg.evaluation.evaluate import evaluate  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_task(evaluate, cfg)


if __name__ == "__main__":
    check_command_line(REPO / "configs", "evaluate", sys.argv[1:])  # a key or option not in the configs: one line
    main()
