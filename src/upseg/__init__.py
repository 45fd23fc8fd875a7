"""upseg: which upsampling layer should a segmentation decoder use, and why."""

from upseg.module import SegmentationModule

__version__ = "0.1.0"
__all__ = ["SegmentationModule"]
