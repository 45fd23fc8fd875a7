"""Datasets and the datamodule they share: ``(image N×3×H×W float32, mask N×H×W int64)`` batches."""

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.shapes import ShapesDataset
from upseg.data.shapes_datamodule import ShapesDataModule

__all__ = ["SegmentationDataModule", "ShapesDataModule", "ShapesDataset"]
