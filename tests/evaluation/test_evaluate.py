"""scripts/evaluate.py reproduces a training run's test mIoU; sweeps end in a comparison of decoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from upseg.compare import compare
from upseg.evaluate import evaluate
from upseg.train import train

TINY = [
    "data.num_train=24",
    "data.num_val=8",
    "data.num_test=8",
    "data.image_size=32",
    "model.depth=2",
    "model.base_width=8",
]


@pytest.mark.parametrize("decoder", ["direct", "pixelshuffle"])
def test_evaluating_the_best_checkpoint_reproduces_the_training_test_miou(
    train_config, compose_configs, tmp_path, decoder
):
    trained = train(train_config(f"decoder={decoder}", *TINY, "trainer.max_epochs=2", output=tmp_path / "train"))
    cfg = compose_configs(
        "evaluate",
        tmp_path / "eval",
        [f"ckpt_path={trained['best_ckpt']}", "trainer=cpu", "trainer.enable_progress_bar=false"],
    )
    result = evaluate(cfg)

    assert result["decoder"] == decoder
    assert abs(result["test/mIoU"] - trained["test/mIoU"]) <= 1e-4
    for name, iou in trained["test/IoU"].items():
        assert abs(result["test/IoU"][name] - iou) <= 1e-4
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    matrix = written["confusion_matrix"]
    assert len(matrix) == 4 and sum(map(sum, matrix)) == 8 * 32 * 32  # every test pixel, none ignored in shapes
    assert written["class_names"] == ["background", "circle", "square", "triangle"]
    for picture in ("confusion_matrix.png", "predictions.png"):
        assert (tmp_path / "eval" / picture).stat().st_size > 5000


@pytest.mark.parametrize(
    "write,message",
    [
        (None, "does not exist"),
        (b"not a checkpoint", "is not a readable upseg checkpoint"),
    ],
)
def test_a_missing_or_unreadable_checkpoint_is_one_clear_error(scripts, tmp_path, write, message):
    path = tmp_path / "model.ckpt"
    if write is not None:
        path.write_bytes(write)
    result = scripts.run("evaluate.py", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'out'}", root=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert str(path) in line and message in line
    assert "Traceback" not in result.stderr


def test_a_two_by_two_sweep_ends_in_a_comparison_per_decoder(scripts, tmp_path):
    sweep = tmp_path / "sweep"
    result = scripts.run(
        "train.py",
        "-m",
        "experiment=quickstart",
        "decoder=transpose,bilinear",
        "seed=0,1",
        "trainer.max_epochs=1",
        *TINY,
        *scripts.QUIET,
        f"hydra.sweep.dir={sweep}",
        root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (sweep / "comparison.csv").read_text().splitlines()
    assert lines[0].startswith("decoder,seed,")
    assert sorted(line.split(",")[:2] for line in lines[1:]) == [
        ["bilinear", "0"],
        ["bilinear", "1"],
        ["transpose", "0"],
        ["transpose", "1"],
    ]
    table = (sweep / "comparison.md").read_text()
    assert "| transpose | 2 |" in table and "| bilinear | 2 |" in table and "## Failed runs (0)" in table
    assert (sweep / "comparison.png").stat().st_size > 10000


def fake_run(folder: Path, decoder: str, seed: int, metrics: dict | None, error: str | None = None) -> None:
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(
        {"decoder": {"name": decoder}, "seed": seed, "model": {"network": "unet"}}, folder / ".hydra" / "config.yaml"
    )
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (folder / "error.txt").write_text(f"Traceback ...\nValueError: {error}\n")


def test_comparison_reports_mean_and_std_over_seeds_and_lists_failed_runs(scripts, tmp_path):
    fake_run(tmp_path / "0", "transpose", 0, {"test/mIoU": 0.80, "val/mIoU": 0.70, "parameters": 10})
    fake_run(tmp_path / "1", "transpose", 1, {"test/mIoU": 0.90, "val/mIoU": 0.72, "parameters": 10})
    fake_run(tmp_path / "2", "nearest", 0, {"test/mIoU": 0.50, "val/mIoU": 0.40, "parameters": 8})
    fake_run(tmp_path / "3", "nearest", 1, None, error="out of memory")
    rows, table = compare(tmp_path)
    assert [row["status"] for row in rows] == ["ok", "ok", "ok", "failed"]
    by_decoder = {entry["decoder"]: entry for entry in table}
    mean, std = by_decoder["transpose"]["test/mIoU"]
    assert mean == pytest.approx(0.85) and std == pytest.approx(0.0707107, rel=1e-5)
    assert by_decoder["nearest"]["runs"] == 1 and by_decoder["nearest"]["failed"] == 1
    text = (tmp_path / "comparison.md").read_text()
    assert "| transpose | 2 | 0.8500 ± 0.0707 |" in text
    assert "## Failed runs (1)" in text and "decoder=nearest seed=1: ValueError: out of memory" in text
    result = scripts.run("compare.py", str(tmp_path), root=tmp_path)
    assert result.returncode == 1 and "Failed runs (1)" in result.stdout
