"""Pictures of an evaluation: the row-normalised confusion matrix and input / ground truth / prediction grids, in a
dataset's palette.

Matplotlib with the non-interactive Agg backend, so they render on machines without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

IGNORE_COLOUR = np.array([255, 255, 255], dtype=np.uint8)


def default_palette(num_classes: int) -> np.ndarray:
    """``num_classes×3`` uint8 colours from matplotlib's tab20 (for datasets without a palette of their own)."""
    colours = plt.get_cmap("tab20")(np.arange(num_classes) % 20)[:, :3]
    return (colours * 255).astype(np.uint8)


def colourise(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``H×W`` class indices → ``H×W×3`` colours; values outside the palette (ignore_index) are white."""
    out = np.broadcast_to(IGNORE_COLOUR, (*mask.shape, 3)).copy()
    known = (mask >= 0) & (mask < len(palette))
    out[known] = palette[mask[known]]
    return out


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (rows: ground truth, columns: prediction), annotated when small."""
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    if len(class_names) <= 25:
        for i, j in np.ndindex(normalised.shape):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_predictions(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    palette: np.ndarray,
    path: Path,
    title: str = "",
) -> None:
    """One row per image: input (``H×W×3`` uint8), ground truth and prediction (``H×W`` indices) in the palette."""
    fig, axes = plt.subplots(len(images), 3, figsize=(9, 3 * len(images)), squeeze=False)
    for row, (image, target, prediction) in enumerate(zip(images, targets, predictions, strict=True)):
        for ax, picture, name in zip(
            axes[row],
            (image, colourise(target, palette), colourise(prediction, palette)),
            ("input", "ground truth", "prediction"),
            strict=True,
        ):
            ax.imshow(picture, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
