"""A hostile checkpoint: a file shaped like a Lightning checkpoint whose unpickling would run code."""

from __future__ import annotations

import pathlib
from pathlib import Path

import torch


class CreatesMarker:
    """Unpickling this object calls ``Path.touch(marker)``: a stand-in for any command a hostile file could run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def hostile_checkpoint(folder: Path) -> tuple[Path, Path]:
    """A file shaped like a Lightning checkpoint that creates ``marker`` when unpickled unsafely."""
    marker = folder / "marker"
    path = folder / "hostile.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0, "payload": CreatesMarker(marker)}, path)
    return path, marker
