"""Peak memory and time of one prediction of a large image, in one inference mode (one process per mode, so that each
peak is its own): a JSON line.

python docs/pending_runs/issue21/memtime.py CHECKPOINT IMAGE whole|slide512|slide1024|slide512_flip
"""

import json
import resource
import sys
import time

import numpy as np
from PIL import Image

import upseg

MODES = {
    "whole": {},
    "slide512": {"mode": "slide", "crop": 512, "stride": 256},
    "slide1024": {"mode": "slide", "crop": 1024, "stride": 512},
    "slide512_flip": {"mode": "slide", "crop": 512, "stride": 256, "flip": True},
}


def gib(kib: int) -> float:
    return round(kib / 2**20, 2)  # ru_maxrss is in KiB on Linux


checkpoint, image_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]
model = upseg.load(checkpoint, **MODES[mode])
image = np.asarray(Image.open(image_file).convert("RGB"))
model.predict(image[:256, :256])  # warm-up: allocator and kernels
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
mask = model.predict(image)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {
    "mode": mode,
    "inference": model.module.inference.describe(),
    "size": list(image.shape[:2]),
    "seconds": round(seconds, 1),
    "peak_rss_gib": gib(peak),
    "rss_before_gib": gib(before),
    "pixels_per_class": np.bincount(mask.ravel(), minlength=len(model.class_names)).tolist(),
}
print(json.dumps(result))
