"""Training end to end through upseg.training.train.train and scripts/train.py, on the shapes dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from upseg import SegmentationModule
from upseg.evaluation.evaluate import evaluate
from upseg.training.train import train
from upseg.upsample import UPSAMPLERS

SMALL_MODEL = {"unet": ["model.net.depth=2", "model.net.base_width=8"], "fcn": ["model.net.head_channels=16"]}


@pytest.mark.parametrize(
    "options,label",
    [
        # the pyramid head with an upsampler per stage (into strides 8 and 4, then the final ×4)
        (
            ["model=fpn", "model.net.depth=4", "model.net.base_width=4", "model.net.channels=8"]
            + ["model.net.final_upsample=decoder", "decoder.stages=[carafe,dysample,bilinear]"],
            "carafe,dysample,bilinear",
        ),
        # the U-Net without skips on a timm encoder
        (["model=unet_noskip", "model.net.encoder=timm:resnet10t", "model.net.depth=3", "decoder=fade"], "fade"),
    ],
    ids=["fpn-stages", "unet_noskip-timm"],
)
def test_the_other_architectures_train_and_their_checkpoints_rebuild_them(train_config, tmp_path, options, label):
    if any("timm:" in option for option in options):
        pytest.importorskip("timm", reason='needs pip install -e ".[timm]"')
    written = train(train_config(*options, "trainer.limit_train_batches=2"))
    assert written["decoder"] == label and 0.0 <= written["test/mIoU"] <= 1.0
    restored = SegmentationModule.load_from_checkpoint(written["best_ckpt"], map_location="cpu", weights_only=True)
    assert sum(p.numel() for p in restored.parameters()) == written["parameters"]


@pytest.mark.parametrize("model", ["unet", "fcn"])
@pytest.mark.parametrize("decoder", sorted(UPSAMPLERS))
def test_a_few_steps_for_every_model_and_decoder(train_config, compose_configs, tmp_path, model, decoder):
    options = [f"model={model}", f"decoder={decoder}", *SMALL_MODEL[model], "trainer.limit_train_batches=2"]
    summary = train(train_config(*options))

    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["decoder"] == decoder and written["model"] == model
    assert 0.0 <= written["val/mIoU"] <= 1.0 and 0.0 <= written["test/mIoU"] <= 1.0
    assert set(written["test/IoU"]) == {"background", "circle", "square", "triangle"}
    assert written["parameters"] > 0 and written["train_seconds"] > 0
    assert Path(written["best_ckpt"]).is_absolute() and Path(written["best_ckpt"]).is_file()
    # One last.ckpt beside the best, although two callbacks save "last" (without the shared name: last-v1.ckpt too).
    saved = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert saved == [Path(written["best_ckpt"]).name, "last.ckpt"]

    # The checkpoint alone, read as weights only, rebuilds the exact model, decoder included ...
    restored = SegmentationModule.load_from_checkpoint(written["best_ckpt"], map_location="cpu", weights_only=True)
    assert restored.hparams.decoder["name"] == decoder and restored.hparams.net["name"] == model
    assert sum(p.numel() for p in restored.parameters()) == written["parameters"]
    # ... evaluates to the run's test score ...
    evaluated = evaluate(
        compose_configs(
            "evaluate",
            tmp_path / "evaluate",
            [f"ckpt_path={written['best_ckpt']}", "trainer=cpu", "trainer.enable_progress_bar=false", "num_pictures=1"],
        )
    )
    assert abs(evaluated["test/mIoU"] - written["best/test/mIoU"]) <= 1e-4
    # ... and resumes training where it stopped.
    resumed = train(
        train_config(*options, "trainer.max_epochs=2", f"ckpt_path={written['last_ckpt']}", output=tmp_path / "resumed")
    )
    assert resumed["epochs"] == 2 and logged_epochs(tmp_path / "resumed") == [1]


def logged_epochs(run: Path) -> list[int]:
    with open(run / "csv" / "metrics.csv") as f:
        return sorted({int(row["epoch"]) for row in csv.DictReader(f) if row.get("val/mIoU")})


def final_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


def test_resume_from_last_checkpoint_continues_the_epoch_count(train_config, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    cfg = train_config("trainer.max_epochs=2", output=first)
    steps_per_epoch = cfg.data.num_train // cfg.data.batch_size
    train(cfg)
    last = first / "checkpoints" / "last.ckpt"
    # last.ckpt is the state at the end of training, even where the last epoch did not improve val/mIoU (Lightning
    # 2.6 then leaves the best-tracking callback's last.ckpt one epoch behind; the train-end save replaces it).
    assert final_step(last) == 2 * steps_per_epoch

    summary = train(train_config("trainer.max_epochs=3", f"ckpt_path={last}", output=second))
    assert logged_epochs(first) == [0, 1]
    assert logged_epochs(second) == [2]  # only the epoch that was left
    assert summary["epochs"] == 3
    assert final_step(second / "checkpoints" / "last.ckpt") == 3 * steps_per_epoch


@pytest.mark.slow
def test_short_training_on_shapes_clearly_beats_chance(train_config, tmp_path):
    """A few hundred steps: far above what a constant or random prediction scores (mIoU ≤ 0.25 for 4 classes)."""
    cfg = train_config(
        "experiment=quickstart",
        "data.image_size=48",
        "data.num_train=800",
        "data.num_val=64",
        "data.num_test=64",
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
        fast=False,
    )
    summary = train(cfg)
    assert summary["test/mIoU"] > 0.5, summary


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_accelerator_without_gpu_says_how_to_run_on_cpu(scripts, tmp_path):
    result = scripts.run("train.py", "experiment=quickstart", "trainer.accelerator=gpu", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: trainer.accelerator=gpu but this machine has no usable CUDA GPU; "
        "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
    )


def test_ddp_trains_with_two_cpu_processes(scripts, tmp_path):
    result = scripts.run(
        "train.py",
        "experiment=quickstart",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "trainer.precision=32-true",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "data.num_train=16",
        "data.num_val=8",
        "data.num_test=8",
        "data.image_size=32",
        "data.batch_size=4",
        "model.net.depth=2",
        "model.net.base_width=8",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test/mIoU"] <= 1.0


@pytest.mark.parametrize(
    "options",
    [
        ["model.channels_last=true"],
        ["trainer.precision=bf16-mixed"],
        ["model.compile=aot_eager"],  # the GPU path uses inductor; aot_eager traces the same graph without a compiler
    ],
)
@pytest.mark.parametrize("decoder", ["direct", "carafe", "dysample", "fade"])
def test_our_own_layers_train_under_the_gpu_path_options(train_config, tmp_path, options, decoder):
    summary = train(train_config(f"decoder={decoder}", "trainer.limit_train_batches=2", *options))
    assert summary["decoder"] == decoder and 0.0 <= summary["test/mIoU"] <= 1.0
