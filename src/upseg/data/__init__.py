"""Datasets and the datamodule they share: ``(image N×3×H×W float32, mask N×H×W int64)`` batches."""

from upseg.data.datamodule import SegmentationDataModule
from upseg.data.folder import FolderDataModule
from upseg.data.pets import PetsDataModule
from upseg.data.shapes import ShapesDataset
from upseg.data.shapes_datamodule import ShapesDataModule
from upseg.data.voc import VOCAugDataModule, VOCDataModule

__all__ = [
    "FolderDataModule",
    "PetsDataModule",
    "SegmentationDataModule",
    "ShapesDataModule",
    "ShapesDataset",
    "VOCAugDataModule",
    "VOCDataModule",
]
