"""upseg: which upsampling layer should a segmentation decoder use, and why."""

import upseg.resolvers  # noqa: F401  (registers the OmegaConf resolvers the configs use)
from upseg.module import SegmentationModule

__version__ = "0.1.0"
__all__ = ["SegmentationModule"]
