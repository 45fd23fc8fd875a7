"""DDP batch semantics and metric sync, on two CPU processes (gloo).

``data.batch_size`` is per process: two processes at batch size 4 take 16 images in 2 optimizer steps of 8, where
one process takes 4 steps. Val and test metrics are those of the whole split however many processes share it:
testing one checkpoint with 1 and with 2 processes gives the same ``metrics.json``, on a split of 5 images that 2
processes cannot share evenly (Lightning's DistributedSampler would count one image twice; see
``upseg.data.distributed``), and the val mIoU of a 2-process fit equals one process's evaluation of the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

DATA = ["data.num_train=16", "data.num_val=5", "data.num_test=5", "data.batch_size=4"]
SMALL_MODEL = ["model.net.depth=2", "model.net.base_width=8"]
DDP_CPU = [
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.sync_batchnorm=false",  # SyncBatchNorm has no CPU kernel
    "trainer.precision=32-true",
]


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def same_test_metrics(a: dict, b: dict) -> None:
    """IoU, boundary IoU and accuracy are ratios of pixel counts, the checkerboard score of float64 sums, the loss a
    mean of per-batch losses weighted by their images (batches of 4 + 1 in one process, 3 and 2 in two; shapes has
    no ignored pixels, so every image weighs the same): the same up to rounding."""
    for key in ("test/mIoU", "test/bIoU", "test/acc", "test/mAcc"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    assert a["test/loss"] == pytest.approx(b["test/loss"], rel=1e-5)
    assert a["test/IoU"] == pytest.approx(b["test/IoU"], abs=1e-6)
    assert a["test/boundary_IoU"] == pytest.approx(b["test/boundary_IoU"], abs=1e-6)
    assert a["test/checkerboard"] == pytest.approx(b["test/checkerboard"], rel=1e-5, abs=1e-7)


@pytest.mark.slow
def test_two_processes_share_the_batch_and_agree_with_one_on_the_metrics(scripts, tmp_path):
    common = [*scripts.TINY, *DATA, *SMALL_MODEL, *scripts.QUIET]

    fit = scripts.run("train.py", *common, *DDP_CPU, f"hydra.run.dir={tmp_path / 'fit'}", root=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "fit" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 16 // (4 * 2)  # one epoch: N / (batch_size × processes) optimizer steps

    runs = {}
    for name, extra in (("one", []), ("two", DDP_CPU)):
        run = tmp_path / f"test_{name}"
        result = scripts.run(
            "train.py",
            *common,
            *extra,
            "train=false",
            f"ckpt_path={tmp_path / 'fit' / 'checkpoints' / 'last.ckpt'}",
            f"hydra.run.dir={run}",
            root=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = metrics(run)
    same_test_metrics(runs["one"], runs["two"])
    # Every test image once, with the same counts: rank 0 writes what all processes saw.
    per_image = {name: (tmp_path / f"test_{name}" / "per_image.csv").read_text() for name in ("one", "two")}
    assert per_image["one"] == per_image["two"] and len(per_image["one"].splitlines()) == 1 + 5

    # Validation during the 2-process fit, against one process evaluating the same weights on the val split.
    fitted = metrics(tmp_path / "fit")
    evaluation = scripts.run(
        "evaluate.py",
        f"ckpt_path={fitted['best_ckpt']}",
        "split=val",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path / 'val_one'}",
        root=tmp_path,
    )
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert metrics(tmp_path / "val_one")["val/mIoU"] == pytest.approx(fitted["val/mIoU"], abs=1e-6)
