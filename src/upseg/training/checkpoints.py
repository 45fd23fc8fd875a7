"""Checkpoints are read as weights only: never code.

A ``.ckpt`` file is a pickle, and unpickling can call any function its author named — a checkpoint from someone else
could run a shell command the moment it is loaded. upseg therefore reads every checkpoint with
``torch.load(weights_only=True)``, whose unpickler only rebuilds tensors, numbers, strings and plain containers, and
passes ``weights_only=True`` to every Lightning call that loads one (resuming, testing, ``load_from_checkpoint``).
upseg's own checkpoints hold nothing else (hyperparameters and the run's config are saved as plain dicts), so no type
needs ``torch.serialization.add_safe_globals``. A file that names any other Python object is refused before anything
in it runs.

:func:`module_from_checkpoint` rebuilds the LightningModule from a checkpoint's hyperparameters alone; checkpoints
written before the network's options moved under ``net`` (``network: unet, depth: 4, …`` beside the module's own
arguments) are read too, their network options gathered into ``net``.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

import torch

from upseg.errors import UpsegError, first_line
from upseg.training.module import SegmentationModule

# What torch's weights-only unpickler says when the file names a function or class it will not rebuild (as opposed
# to a file that is not a pickle at all).
_EXECUTABLE_MARKERS = ("Unsupported global", "not an allowed global")


class CheckpointRefused(UpsegError):
    """The checkpoint names Python objects (code) that loading it would run."""


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint at ``path``, loaded weights-only onto the CPU.

    A missing file, a file that is not a checkpoint, and one that would run code (:class:`CheckpointRefused`) are
    each one :class:`UpsegError` that names ``key`` and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise UpsegError(f"{key} {path} does not exist; give the path of a .ckpt file written by scripts/train.py")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if any(marker in str(error) for marker in _EXECUTABLE_MARKERS):
            raise CheckpointRefused(
                f"{key} {path} was refused: it contains executable objects (Python code that loading it would run), "
                "and upseg loads checkpoints as weights only; use a checkpoint written by scripts/train.py"
            ) from None
        raise UpsegError(f"{key} {path} is not a readable upseg checkpoint (not a PyTorch checkpoint file)") from None
    except Exception as error:  # a truncated file, another format
        raise UpsegError(f"{key} {path} is not a readable upseg checkpoint ({first_line(error)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UpsegError(f"{key} {path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def migrate_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` in today's form: ``network`` and the network's options beside the module's own arguments (older
    checkpoints) become ``net = {name, **options}``."""
    if "net" in hparams or "network" not in hparams:
        return hparams
    own = set(inspect.signature(SegmentationModule.__init__).parameters) - {"self", "net"}
    options = {key: value for key, value in hparams.items() if key not in own and key != "network"}
    return {key: value for key, value in hparams.items() if key in own} | {
        "net": {"name": hparams["network"], **options}
    }


def module_from_checkpoint(path: str | Path, key: str = "ckpt_path") -> SegmentationModule:
    """The :class:`SegmentationModule` a checkpoint holds — network, decoder, options and weights — read weights-only
    onto the CPU; a file that is not an upseg checkpoint is one :class:`UpsegError` naming ``key`` and the file."""
    checkpoint = read_checkpoint(path, key)
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or "decoder" not in hparams:
        raise UpsegError(
            f"{key} {path} is not an upseg checkpoint (it records no network and decoder); "
            "use a checkpoint written by scripts/train.py"
        )
    try:
        module = SegmentationModule(**migrate_hyperparameters(hparams))
        module.on_load_checkpoint(checkpoint)
        module.load_state_dict(checkpoint["state_dict"])
    except UpsegError:
        raise
    except Exception as error:  # weights of another network, options this version does not know
        raise UpsegError(f"{key} {path} is not a readable upseg checkpoint ({first_line(error)})") from None
    return module
