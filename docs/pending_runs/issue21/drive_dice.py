"""Vessel Dice inside the FOV of predicted DRIVE test masks (class 1 = vessel, files paired by leading number) against
1st_manual, pixels pooled over the photos; with evaluate.py's metrics.json, its test/binary/Dice beside it.

python docs/pending_runs/issue21/drive_dice.py DRIVE_ROOT MASK_FOLDER [EVALUATE_METRICS_JSON]
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def number(path: Path) -> int:
    return int(re.match(r"\d+", path.name).group())


root, masks = Path(sys.argv[1]), Path(sys.argv[2])
predicted = {
    number(path): path for path in masks.iterdir() if path.suffix in (".png", ".gif") and path.name[0].isdigit()
}
tp = fp = fn = 0
for truth_file in sorted((root / "test" / "1st_manual").iterdir(), key=number):
    n = number(truth_file)
    truth = np.asarray(Image.open(truth_file)) > 0
    fov = np.asarray(Image.open(root / "test" / "mask" / f"{n:02d}_test_mask.gif")) > 0
    vessel = np.asarray(Image.open(predicted[n])) == 1
    tp += int((vessel & truth & fov).sum())
    fp += int((vessel & ~truth & fov).sum())
    fn += int((~vessel & truth & fov).sum())
result = {"masks": str(masks), "images": len(predicted), "vessel_dice_in_fov": 2 * tp / (2 * tp + fp + fn)}
if len(sys.argv) > 3:
    evaluated = json.loads(Path(sys.argv[3]).read_text())
    result |= {"evaluate_binary_dice": evaluated["test/binary/Dice"], "inference": evaluated.get("inference")}
    result["difference"] = abs(result["vessel_dice_in_fov"] - result["evaluate_binary_dice"])
print(json.dumps(result))
