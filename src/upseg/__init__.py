"""upseg: which upsampling layer should a segmentation decoder use, and why."""

__version__ = "0.1.0"
