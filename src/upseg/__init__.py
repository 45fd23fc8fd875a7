"""upseg: which upsampling layer should a segmentation decoder use, and why."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["SegmentationModule", "load"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `import upseg.upsample` costs torch alone, not Lightning, Hydra and torchmetrics.
    if name == "SegmentationModule":
        from upseg.training.module import SegmentationModule

        return SegmentationModule
    if name == "load":  # upseg.load(checkpoint) → a Predictor (upseg.prediction)
        from upseg.prediction import load

        return load
    raise AttributeError(f"module 'upseg' has no attribute {name!r}")
