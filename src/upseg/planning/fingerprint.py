"""A dataset's fingerprint: what the plan (:mod:`upseg.planning.rules`) needs to know of the training images, read in
one pass over ``(image H×W×3 uint8, mask H×W int)`` samples.

- ``sizes``: ``(H, W)`` of every image read; ``images``: how many there are (all of them, read or not).
- ``class_pixels``: pixels per class (``ignore_index`` not counted); their frequencies ``f_c = n_c / Σ n``.
- ``thin_fraction``: of the pixels of every class but the most frequent (the foreground), the fraction on the
  class's boundary — a pixel one of whose 4 neighbours is another value. 1 for structures one or two pixels wide
  (vessels), about ``2/r`` for blobs of radius ``r``; it says how much of what is to be found is boundary.
- ``decoded_bytes``: the memory of every image and mask decoded (``H·W·3`` + ``H·W·8`` bytes each), for caching.

Large datasets are read at ``limit`` evenly spaced images and the counts scaled up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MASK_BYTES_PER_PIXEL = 8  # masks are int64 once decoded


@dataclass(frozen=True)
class Fingerprint:
    images: int
    read: int
    sizes: tuple[tuple[int, int], ...]
    class_pixels: tuple[int, ...]
    thin_fraction: float
    decoded_bytes: int

    @property
    def frequencies(self) -> tuple[float, ...]:
        total = sum(self.class_pixels)
        return tuple(count / total if total else 0.0 for count in self.class_pixels)

    @property
    def median_size(self) -> tuple[int, int]:
        heights, widths = zip(*self.sizes, strict=True)
        return int(np.median(heights)), int(np.median(widths))

    @property
    def smallest_side(self) -> int:
        return min(min(size) for size in self.sizes)

    @property
    def largest_pixels(self) -> int:
        return max(height * width for height, width in self.sizes)

    @property
    def uniform_size(self) -> bool:
        return len(set(self.sizes)) == 1

    def summary(self) -> dict[str, Any]:
        """Plain values for plan.yaml and the printed plan."""
        height, width = self.median_size
        return {
            "images": self.images,
            "images_read": self.read,
            "median_size": [height, width],
            "smallest_side": self.smallest_side,
            "sizes_vary": not self.uniform_size,
            "class_frequencies": [round(f, 4) for f in self.frequencies],
            "thin_fraction": round(self.thin_fraction, 3),
            "decoded_mib": round(self.decoded_bytes / 2**20, 1),
        } | {"class_pixels": list(asdict(self)["class_pixels"])}


def boundary(mask: np.ndarray) -> np.ndarray:
    """``H×W`` bool: pixels with a 4-neighbour of another value (the image edge is not a boundary)."""
    edge = np.zeros(mask.shape, dtype=bool)
    vertical = mask[1:] != mask[:-1]
    horizontal = mask[:, 1:] != mask[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


def read_indices(count: int, limit: int) -> list[int]:
    """All of ``range(count)``, or ``limit`` of them evenly spaced."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def fingerprint(samples: Sequence[Any], num_classes: int, ignore_index: int, limit: int = 1000) -> Fingerprint:
    """The :class:`Fingerprint` of ``samples`` (a dataset of ``(image, mask)`` pairs, numpy or PIL)."""
    indices = read_indices(len(samples), limit)
    sizes, pixels = [], np.zeros(num_classes, dtype=np.int64)
    per_class_edge = np.zeros(num_classes, dtype=np.int64)
    decoded = 0
    for index in indices:
        image, mask = samples[index]
        mask = np.asarray(mask)
        height, width = mask.shape[:2]
        sizes.append((int(height), int(width)))
        decoded += height * width * (3 + MASK_BYTES_PER_PIXEL)
        valid = mask != ignore_index
        labels = mask[valid].astype(np.int64)
        pixels += np.bincount(labels[labels < num_classes], minlength=num_classes)[:num_classes]
        edges = mask[boundary(mask) & valid].astype(np.int64)
        per_class_edge += np.bincount(edges[edges < num_classes], minlength=num_classes)[:num_classes]
    scale = len(samples) / len(indices)
    foreground = np.ones(num_classes, dtype=bool)
    foreground[int(np.argmax(pixels))] = False
    total = pixels[foreground].sum()
    thin = float(per_class_edge[foreground].sum() / total) if total else 0.0
    return Fingerprint(
        images=len(samples),
        read=len(indices),
        sizes=tuple(sizes),
        class_pixels=tuple(int(round(count * scale)) for count in pixels),
        thin_fraction=thin,
        decoded_bytes=int(decoded * scale),
    )
