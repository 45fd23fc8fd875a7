"""Datasets and the datamodule they share, which serves :class:`Batch` es ``(images N×3×H×W float32, masks N×H×W
int64, indices N int64)``: one datamodule base (:class:`SegmentationDataModule`) and thin datasets over it; the
:class:`DataSpec` a model keeps of its data (normalisation, evaluation size, image conversion, palette) and
unlabelled images to predict (:mod:`.unlabeled`). Imports :mod:`upseg.errors` and the data libraries (torchvision,
albumentations, PIL), nothing else of upseg."""

from upseg.data.datamodule import Batch, SegmentationDataModule
from upseg.data.folder import FolderDataModule
from upseg.data.pets import PetsDataModule
from upseg.data.shapes import ShapesDataset
from upseg.data.shapes_datamodule import ShapesDataModule
from upseg.data.spec import DataSpec
from upseg.data.voc import VOCAugDataModule, VOCDataModule

__all__ = [
    "Batch",
    "DataSpec",
    "FolderDataModule",
    "PetsDataModule",
    "SegmentationDataModule",
    "ShapesDataModule",
    "ShapesDataset",
    "VOCAugDataModule",
    "VOCDataModule",
]
