"""A run killed mid-epoch resumes from last.ckpt without repeating work; Ctrl-C and SIGTERM save last.ckpt first and
say, in one line, how to resume. Each test runs scripts/train.py in a subprocess and signals it from outside."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

STEPS_PER_EPOCH, EPOCHS = 12, 3  # 48 images in batches of 4
TRAIN = [
    "experiment=quickstart",
    "data.num_train=48",
    "data.num_val=8",
    "data.num_test=8",
    "data.image_size=48",
    "data.batch_size=4",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "callbacks.step_checkpoint.every_n_train_steps=4",  # last.ckpt at steps 4, 8, 12 (epoch end), 16, ...
]


def start(scripts, root: Path, run: Path, *extra: str) -> subprocess.Popen:
    return scripts.start("train.py", *TRAIN, *extra, f"hydra.run.dir={run}", root=root)


def saved_step(checkpoint: Path) -> int:
    """The optimizer steps in ``checkpoint``, or -1 while it is missing or being written."""
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]
    except Exception:
        return -1


def wait_for_step(process: subprocess.Popen, checkpoint: Path, step: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while saved_step(checkpoint) < step:
        assert process.poll() is None, f"training ended before step {step}: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no checkpoint of step {step} within {timeout} s"
        time.sleep(0.01)


def run_to_end(scripts, root: Path, run: Path, *extra: str) -> dict:
    process = start(scripts, root, run, *extra)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads((run / "metrics.json").read_text())


def validated_epochs(run: Path) -> list[int]:
    with open(run / "csv" / "metrics.csv") as f:
        return sorted({int(row["epoch"]) for row in csv.DictReader(f) if row.get("val/mIoU")})


def test_killed_mid_epoch_it_resumes_from_last_ckpt_with_the_same_steps_as_an_uninterrupted_run(scripts, tmp_path):
    crashed, resumed, uninterrupted = tmp_path / "crashed", tmp_path / "resumed", tmp_path / "uninterrupted"
    last = crashed / "checkpoints" / "last.ckpt"
    process = start(scripts, tmp_path, crashed)
    wait_for_step(process, last, STEPS_PER_EPOCH + 4)  # after the end-of-epoch-0 checkpoint, inside epoch 1
    process.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
    process.wait()
    assert process.returncode == -signal.SIGKILL and not (crashed / "metrics.json").exists()
    crash_point = torch.load(last, map_location="cpu", weights_only=True)
    assert crash_point["epoch"] == 1 and STEPS_PER_EPOCH < crash_point["global_step"] < 2 * STEPS_PER_EPOCH

    summary = run_to_end(scripts, tmp_path, resumed, f"ckpt_path={last}")
    reference = run_to_end(scripts, tmp_path, uninterrupted)
    final = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == saved_step(uninterrupted / "checkpoints" / "last.ckpt") == EPOCHS * STEPS_PER_EPOCH
    assert summary["epochs"] == reference["epochs"] == EPOCHS
    assert validated_epochs(resumed) == [1, 2]  # the interrupted epoch is finished, epoch 0 is not run again
    assert validated_epochs(crashed) == [0]


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_save_last_ckpt_and_print_how_to_resume(scripts, tmp_path, signal_number):
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    process = start(scripts, tmp_path, run)
    wait_for_step(process, last, STEPS_PER_EPOCH + 1)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == (1 if signal_number == signal.SIGINT else 128 + signal.SIGTERM)
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted by")]
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert step > STEPS_PER_EPOCH and f"after {step} optimizer steps; saved {last}; resume with: " in line

    # The printed command resumes (run from the same folder, with the same UPSEG_ROOT) and finishes the training.
    command = line.split("resume with: ", 1)[1].split()
    assert command[:2] == ["python", "scripts/train.py"] and command[2 : 2 + len(TRAIN)] == TRAIN
    assert command[-1] == f"ckpt_path={last}"
    summary = run_to_end(scripts, tmp_path, tmp_path / "resumed", *command[2 + len(TRAIN) :])
    assert summary["epochs"] == EPOCHS
    assert saved_step(tmp_path / "resumed" / "checkpoints" / "last.ckpt") == EPOCHS * STEPS_PER_EPOCH
