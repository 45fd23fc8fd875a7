"""mIoU of predicted masks (class-index PNGs) against label PNGs of the same names, pooled over the images and averaged
over the classes present in prediction or label (as upseg's test/mIoU); with evaluate.py's metrics.json beside it.

python docs/pending_runs/issue21/miou.py MASK_FOLDER LABEL_FOLDER NUM_CLASSES [EVALUATE_METRICS_JSON]
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

masks, labels, num_classes = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
files = sorted(labels.glob("*.png"))
for label_file in files:
    label = np.asarray(Image.open(label_file)).astype(np.int64)
    prediction = np.asarray(Image.open(masks / label_file.name)).astype(np.int64)
    valid = label != 255
    np.add.at(confusion, (label[valid], prediction[valid]), 1)
intersection = np.diag(confusion)
union = confusion.sum(0) + confusion.sum(1) - intersection
result = {"masks": str(masks), "images": len(files), "miou": float(np.mean(intersection[union > 0] / union[union > 0]))}
if len(sys.argv) > 4:
    evaluated = json.loads(Path(sys.argv[4]).read_text())
    result |= {"evaluate_miou": evaluated["test/mIoU"], "inference": evaluated.get("inference")}
    result["difference"] = abs(result["miou"] - result["evaluate_miou"])
print(json.dumps(result))
