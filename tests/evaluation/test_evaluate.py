"""scripts/evaluate.py reproduces a training run's test mIoU; sweeps end in a comparison of decoders."""

from __future__ import annotations

import csv
import json

import pytest

from upseg.evaluation.evaluate import evaluate
from upseg.training.train import train

TINY = [
    "data.num_train=24",
    "data.num_val=8",
    "data.num_test=8",
    "data.image_size=32",
    "model.net.depth=2",
    "model.net.base_width=8",
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
    assert abs(result["test/mIoU"] - trained["best/test/mIoU"]) <= 1e-4
    assert abs(result["test/bIoU"] - trained["best/test/bIoU"]) <= 1e-4
    for name, iou in trained["best/test/IoU"].items():
        assert abs(result["test/IoU"][name] - iou) <= 1e-4
    # The per-image counts are the training run's for the same checkpoint, row for row.
    evaluated_rows = (tmp_path / "eval" / "per_image.csv").read_text()
    assert evaluated_rows == (tmp_path / "train" / "per_image_best.csv").read_text()
    assert len(evaluated_rows.splitlines()) == 1 + 8
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    matrix = written["confusion_matrix"]
    assert len(matrix) == 4 and sum(map(sum, matrix)) == 8 * 32 * 32  # every test pixel, none ignored in shapes
    assert written["class_names"] == ["background", "circle", "square", "triangle"]
    for picture in ("confusion_matrix.png", "predictions.png"):
        assert (tmp_path / "eval" / picture).stat().st_size > 5000


def test_per_image_rows_follow_the_images_whatever_the_batch_size(train_config, compose_configs, tmp_path):
    # 8 test images in batches of 3 end in a short batch of 2: each row must still be its own image's counts.
    trained = train(train_config(*TINY, output=tmp_path / "train"))
    rows = {}
    for batch_size in (1, 3):
        folder = tmp_path / f"eval{batch_size}"
        data = ["data=shapes", *TINY[:4], f"data.eval_batch_size={batch_size}"]
        checkpoint = [f"ckpt_path={trained['last_ckpt']}", "trainer=cpu", "trainer.enable_progress_bar=false"]
        evaluate(compose_configs("evaluate", folder, [*checkpoint, *data]))
        with open(folder / "per_image.csv") as f:
            rows[batch_size] = list(csv.reader(f))
    assert [row[0] for row in rows[3][1:]] == [str(index) for index in range(8)]
    assert rows[3] == rows[1]


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
    for heading in ("## Accuracy", "## Against the baseline: transpose", "## Cost"):
        assert heading in table
    assert "## Finished runs without per-image scores (0)" in table
    # Final and best columns, the paired interval of bilinear against transpose, and the cost columns.
    (row,) = list(csv.DictReader((sweep / "comparison_summary.csv").read_text().splitlines()))[1:]
    assert row["decoder"] == "bilinear"
    for key in ("test/mIoU", "test/bIoU", "best/test/mIoU", "best/test/bIoU", "gflops", "inference_ms_per_image"):
        assert float(row[f"{key} mean"]) > 0, key
    for label in ("ΔmIoU final", "ΔbIoU final", "ΔmIoU best", "ΔbIoU best"):
        assert float(row[f"{label} low"]) <= float(row[label]) <= float(row[f"{label} high"]), label
    assert "| bilinear | " in table.split("## Against the baseline")[1]
    assert "Δclass-1 Dice" not in table  # shapes has 4 classes: no class-1 Dice interval
    assert (sweep / "comparison.png").stat().st_size > 10000
    for run in ("0", "1", "2", "3"):
        assert (sweep / run / "per_image.csv").is_file() and (sweep / run / "per_image_best.csv").is_file()
