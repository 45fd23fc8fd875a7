"""Building blocks shared by the networks: conv-BN-ReLU, the two-conv U-Net block and pad-to-multiple."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvBNReLU(nn.Sequential):
    """``Conv2d(k, padding=k//2, bias=False) → BatchNorm2d → ReLU``: ``N×C_in×H×W`` → ``N×C_out×H×W``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBNReLU` (the U-Net block): ``N×C_in×H×W`` → ``N×C_out×H×W``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(ConvBNReLU(in_channels, out_channels), ConvBNReLU(out_channels, out_channels))


def pad_bottom_right(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad bottom/right so H and W are multiples of ``multiple``; returns the padded input and the padding
    ``(rows, columns)`` added.

    After normalisation zero is the dataset mean, so the padding looks like a neutral border. While ``torch.export``
    traces, the input is padded even by zero, so that the padded size ``m·⌈H/m⌉`` stays a symbolic multiple of ``m``
    (see :mod:`upseg.models.base`).
    """
    height, width = x.shape[-2:]
    rows = multiple * ((height + multiple - 1) // multiple) - height
    columns = multiple * ((width + multiple - 1) // multiple) - width
    if torch.compiler.is_exporting() or rows or columns:
        x = F.pad(x, (0, columns, 0, rows))
    return x, (rows, columns)
