"""Building blocks shared by the networks: conv-BN-ReLU and the two-conv U-Net block."""

from __future__ import annotations

from torch import nn


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
