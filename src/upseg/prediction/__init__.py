"""From a trained checkpoint to masks on new images: the Python API (:func:`load` → :class:`Predictor`), the
prediction writer and ``predict.py``'s task (:mod:`.predict`), and export to ``torch.export`` / ONNX
(:mod:`.export`). The network runs through :mod:`upseg.inference` (whole image or sliding windows, flips, scales),
as in the tests. Imports training (the module, its checkpoints), inference, data (reading images, the data spec),
cli (run folders, config checks) and errors."""

from upseg.prediction.predictor import Predictor, load

__all__ = ["Predictor", "load"]
