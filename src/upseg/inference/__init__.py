"""Inference on whole images: the logits of a network for images of any size, whole or in sliding windows, with
flip and multi-scale test-time augmentation — one implementation for the test after training, ``evaluate.py`` and
``predict.py`` (and :func:`upseg.load`).

Pure tensors: a network is any callable ``N×C×H×W`` → ``N×K×H×W``; nothing here knows checkpoints, data or
Lightning. Imports torch and :mod:`upseg.errors`, nothing else of upseg.
"""

from upseg.inference.infer import infer_logits
from upseg.inference.settings import BLENDS, MODES, InferenceSettings
from upseg.inference.windows import sliding_window_logits, window_starts, window_weights

__all__ = [
    "BLENDS",
    "MODES",
    "InferenceSettings",
    "infer_logits",
    "sliding_window_logits",
    "window_starts",
    "window_weights",
]
