"""Predict masks for new images — what ``scripts/predict.py`` runs.

``input`` (a file, a folder or a glob: :func:`upseg.data.unlabeled.image_files`) is predicted by the checkpoint's
module through Lightning's ``trainer.predict`` — on any accelerator and in DDP, with a progress bar — under the
``inference`` settings, one image per batch so that each keeps its size; :class:`~upseg.prediction.writer.MaskWriter`
writes the files (:mod:`upseg.prediction.outputs`). The output folder is the run folder (``logs/predict/runs/<time>``)
or ``output_dir``; one that already holds files is kept, and this run writes to a new version beside it
(``<folder>_v2``), as run folders do.

A file that is not an image, or is truncated, is named in one line and skipped; the others are predicted, and the
summary's ``failed`` says how many were skipped (``scripts/predict.py`` then exits with status 1).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from upseg.cli.run_folders import next_free_version
from upseg.cli.validation import build, check_config, check_trainer
from upseg.data.unlabeled import UnlabeledImages, collate_one, image_files
from upseg.errors import ConfigError
from upseg.prediction.outputs import output_names
from upseg.prediction.predictor import check_channels
from upseg.prediction.writer import MaskWriter
from upseg.training.checkpoints import module_from_checkpoint

log = logging.getLogger(__name__)


def output_folder(cfg: DictConfig) -> Path:
    """``output_dir``, or a new version beside it when it holds files; the run folder when it is not given."""
    if cfg.get("output_dir") is None:
        return Path(cfg.paths.output_dir)
    given = Path(cfg.output_dir)
    folder = next_free_version(given)
    if folder != given:
        print(f"note: {given} holds earlier files, which are kept; this run writes to {folder}", file=sys.stderr)
    return folder


def prediction_trainer(cfg: DictConfig, writer: MaskWriter) -> L.Trainer:
    """The ``trainer`` config with the writer as its only callback: no logger, checkpoints or model summary."""
    return build(
        cfg.trainer, "trainer", logger=False, callbacks=[writer], enable_checkpointing=False, enable_model_summary=False
    )


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Predict every image of ``cfg.input`` with ``cfg.ckpt_path``; the summary: where, how many written, failed."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    if not cfg.get("ckpt_path"):
        raise ConfigError(
            "ckpt_path is required: python scripts/predict.py ckpt_path=<run>/checkpoints/last.ckpt input=…"
        )
    if not cfg.get("input"):
        raise ConfigError("input is required: an image file, a folder of images or a glob pattern, e.g. input=photos/")
    module = module_from_checkpoint(cfg.ckpt_path)
    check_channels(module, cfg.ckpt_path)
    module.inference = build(cfg.inference, "inference")
    files = image_files(str(cfg.input))
    folder = output_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    spec = module.data_spec
    writer = MaskWriter(
        folder,
        files,
        output_names(files),
        spec.colours(module.hparams.num_classes),
        overlay=cfg.overlay,
        probabilities=cfg.probabilities,
    )
    loader = DataLoader(UnlabeledImages(files, spec), batch_size=1, num_workers=cfg.num_workers, collate_fn=collate_one)
    trainer = prediction_trainer(cfg, writer)
    log.info("predicting %d files with %s (inference: %s)", len(files), cfg.ckpt_path, module.inference.describe())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "predict returned None")  # an unreadable file's batch: named by the writer
        trainer.predict(module, dataloaders=loader, return_predictions=False)
    summary = {"output_dir": str(folder), "files": len(files), "written": writer.written, "failed": writer.failed}
    if trainer.is_global_zero:
        if writer.failed:
            print(
                f"error: {writer.failed} of {len(files)} files could not be predicted (each named above) and were "
                f"skipped; the masks of the other {writer.written} are in {folder}",
                file=sys.stderr,
            )
        else:
            print(f"{writer.written} masks in {folder}")
    return summary
