"""Plan a run from its dataset without training: ``python scripts/plan.py data=folder data.root=/path ...``.

Prints the dataset's fingerprint and every planned choice with its reason (what ``experiment=auto`` applies), and
saves plan.yaml in the run folder (logs/plan/runs/<time>/). Takes every override scripts/train.py takes.
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
from upseg.planning import plan_task  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="plan")
def main(cfg: DictConfig) -> None:
    run_task(plan_task, cfg)


if __name__ == "__main__":
    check_command_line(REPO / "configs", "plan", sys.argv[1:])
    main()
