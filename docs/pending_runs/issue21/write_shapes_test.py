"""The test split of a shapes training run as PNG files: OUT/images/<i>.png and OUT/labels/<i>.png (class indices).

python docs/pending_runs/issue21/write_shapes_test.py RUN_FOLDER OUT_FOLDER
"""

import sys
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

run, out = Path(sys.argv[1]), Path(sys.argv[2])
data = OmegaConf.load(run / ".hydra" / "config.yaml").data
test = instantiate(data).raw_dataset("test")
(out / "images").mkdir(parents=True)
(out / "labels").mkdir()
for index in range(len(test)):
    image, mask = test[index]
    Image.fromarray(image).save(out / "images" / f"{index}.png")
    Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(out / "labels" / f"{index}.png")
print(f"{len(test)} test images in {out}")
