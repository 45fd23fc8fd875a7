"""Class colours for pictures: ``num_classes×3`` uint8 palettes.

:func:`label_colormap` is the PASCAL VOC devkit's colour map (``labelcolormap.m``): the bits of a class index are
spread over the high bits of red, green and blue, so that class 0 is black and neighbouring classes differ clearly.
VOC's palette-mode masks use exactly these colours.
"""

from __future__ import annotations

import numpy as np


def label_colormap(num_classes: int = 256) -> np.ndarray:
    """``num_classes×3`` uint8 colours of the VOC colour map."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for label in range(num_classes):
        bits, colour = label, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((bits >> channel) & 1) << shift
            bits >>= 3
        palette[label] = colour
    return palette
