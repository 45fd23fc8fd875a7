"""Predict masks for new images: ``python scripts/predict.py ckpt_path=PATH input=<file | folder | glob>
[output_dir=DIR] [inference.mode=slide ...]``.

Writes ``<name>.png`` (class indices, palette PNG) per image — and ``<name>_overlay.jpg``, ``<name>_probabilities.npy``
when asked — to logs/predict/runs/<time>/ or output_dir. Exit status 1 when some files could not be read (each is named
and skipped), 2 for a config or checkpoint mistake.
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
from upseg.prediction.predict import predict  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    summary = run_task(predict, cfg)
    if summary and summary["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    check_command_line(REPO / "configs", "predict", sys.argv[1:])  # a key or option not in the configs: one line
    main()
