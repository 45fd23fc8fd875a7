"""Sweep folders as a multirun leaves them, with made-up per-image counts, for tests of the comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from upseg.metrics.results import write_per_image

CLASSES = ["background", "thing"]


def fake_run(
    folder: Path,
    decoder: str,
    seed: int,
    metrics: dict | None,
    error: str | None = None,
    counts: dict[str, np.ndarray] | None = None,
    overrides: list[str] | None = None,
) -> None:
    """A run folder as a sweep leaves it; ``counts`` (images×classes arrays) become per_image.csv and _best.csv,
    ``overrides`` its ``.hydra/overrides.yaml``."""
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(
        {"decoder": {"name": decoder}, "seed": seed, "model": {"network": "unet"}}, folder / ".hydra" / "config.yaml"
    )
    if overrides is not None:
        OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (folder / "error.txt").write_text(f"Traceback ...\nValueError: {error}\n")
    if counts is not None:
        tensors = {name: torch.from_numpy(value) for name, value in counts.items()}
        tensors["index"] = torch.arange(len(counts["intersection"]))
        for file in ("per_image.csv", "per_image_best.csv"):
            write_per_image(folder / file, tensors, CLASSES, lambda index: f"img_{index:03d}.png")


def image_counts(rng: np.random.Generator, images: int, quality: float) -> dict[str, np.ndarray]:
    """Per-image counts of a model whose IoU per image is about ``quality`` (± noise from image to image)."""
    union = rng.integers(200, 400, size=(images, 2))
    iou = np.clip(quality + rng.normal(0, 0.05, size=(images, 2)), 0, 1)
    intersection = np.round(union * iou).astype(np.int64)
    return {
        "intersection": intersection,
        "union": union,
        "boundary_intersection": intersection // 4,
        "boundary_union": union // 3,
    }
