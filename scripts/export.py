"""Export a checkpoint's network: ``python scripts/export.py ckpt_path=PATH format=onnx|torch_export [dynamic=true]``.

Writes model.onnx or model.pt2 and model.json (input rule, normalisation, classes, palette) to
logs/export/runs/<time>/, after loading the file back and comparing it with eager PyTorch.
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
from upseg.prediction.export import export  # noqa: E402


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
def main(cfg: DictConfig) -> None:
    run_task(export, cfg)


if __name__ == "__main__":
    check_command_line(REPO / "configs", "export", sys.argv[1:])  # a key or option not in the configs: one line
    main()
