"""``shapes``: a procedural, deterministic segmentation dataset that needs no download.

Image ``i`` of a dataset with seed ``s`` is drawn from ``numpy.random.default_rng([s, i])``: a textured, noisy
background (greyish sinusoid gratings plus Gaussian noise) with 1–4 shapes of random size, position, orientation and
shading on top. The class of a pixel is its shape's kind — ``0`` background, then ``circle, square, triangle, ring,
cross`` in that order, as many as ``num_classes − 1`` — and each kind is painted in its own band of saturated hues,
so that a small network learns *what* quickly and the score is decided by *where*: the boundaries an upsampler must
restore.
Returns ``(image H×W×3 uint8, mask H×W int64)``.
"""

from __future__ import annotations

import colorsys

import numpy as np
from torch.utils.data import Dataset

from upseg.errors import ConfigError

SHAPE_CLASSES = ("background", "circle", "square", "triangle", "ring", "cross")


def _rotate(y: np.ndarray, x: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * y - s * x, s * y + c * x


def shape_mask(kind: str, size: int, cy: float, cx: float, radius: float, angle: float) -> np.ndarray:
    """Boolean ``size×size`` mask of one shape centred at ``(cy, cx)`` with circumradius ``radius``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    y, x = _rotate(yy - cy, xx - cx, angle)
    if kind == "circle":
        return y**2 + x**2 <= radius**2
    if kind == "square":
        half = radius / np.sqrt(2)
        return (np.abs(y) <= half) & (np.abs(x) <= half)
    if kind == "triangle":
        # Equilateral: inside all three half-planes whose normals point 120° apart.
        inside = np.ones_like(y, dtype=bool)
        for k in range(3):
            theta = angle + 2 * np.pi * k / 3
            inside &= yy * np.sin(theta) - cy * np.sin(theta) + (xx - cx) * np.cos(theta) <= radius / 2
        return inside
    if kind == "ring":
        r2 = y**2 + x**2
        return (r2 <= radius**2) & (r2 >= (0.55 * radius) ** 2)
    if kind == "cross":
        arm = radius * 0.3
        return ((np.abs(y) <= arm) & (np.abs(x) <= radius)) | ((np.abs(x) <= arm) & (np.abs(y) <= radius))
    raise ValueError(f"unknown shape kind {kind!r}")


class ShapesDataset(Dataset):
    """``length`` images of ``image_size²`` pixels with ``num_classes`` classes (background included, 2–6)."""

    def __init__(self, length: int, image_size: int = 64, num_classes: int = 4, seed: int = 0, max_shapes: int = 4):
        if not 2 <= num_classes <= len(SHAPE_CLASSES):
            raise ConfigError(
                f"data.num_classes must be between 2 and {len(SHAPE_CLASSES)} for shapes, got {num_classes}"
            )
        if image_size < 16:
            raise ConfigError(f"data.image_size must be at least 16 for shapes, got {image_size}")
        if length < 1:
            raise ConfigError(f"the shapes dataset length must be positive, got {length}")
        self.length = length
        self.image_size = image_size
        self.num_classes = num_classes
        self.seed = seed
        self.max_shapes = max_shapes
        self.class_names = list(SHAPE_CLASSES[:num_classes])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        size = self.image_size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size

        image = np.empty((size, size, 3), dtype=np.float32)
        base = rng.uniform(0.25, 0.75) + rng.uniform(-0.06, 0.06, size=3)
        texture = np.zeros((size, size), dtype=np.float32)
        for _ in range(2):
            frequency, phase, direction = rng.uniform(2, 9), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
            texture += np.sin(2 * np.pi * frequency * (np.cos(direction) * xx + np.sin(direction) * yy) + phase)
        tint = rng.uniform(-0.12, 0.12, size=3)
        image[:] = base + texture[..., None] * tint

        mask = np.zeros((size, size), dtype=np.int64)
        for _ in range(rng.integers(1, self.max_shapes + 1)):
            label = int(rng.integers(1, self.num_classes))
            radius = rng.uniform(0.12, 0.3) * size
            cy, cx = rng.uniform(radius * 0.6, size - radius * 0.6, size=2)
            region = shape_mask(SHAPE_CLASSES[label], size, cy, cx, radius, rng.uniform(0, np.pi))
            hue = (label - 1) / (len(SHAPE_CLASSES) - 1) + rng.uniform(-0.05, 0.05)
            colour = np.array(colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0)))
            shading = 1 + 0.15 * (yy - cy / size)[..., None]
            image[region] = (colour * shading)[region]
            mask[region] = label

        image += rng.normal(0, 0.04, size=image.shape).astype(np.float32)
        return (np.clip(image, 0, 1) * 255).astype(np.uint8), mask
