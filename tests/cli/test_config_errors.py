"""Config mistakes that only PyTorch or Lightning would find end as one line naming the key and what it takes.

Each row runs scripts/train.py's path with one wrong value (in this process, :mod:`tests.helpers.in_process`) and
asserts exit status 2, one error line naming the key (and, where the row says, what the key accepts) and no training.
A few rows, one for each place a mistake is caught (the command line before Hydra, a library's constructor, a check of
upseg's own), also run as a user runs them: a process of their own, no traceback, at most three lines on stderr.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers.configs import FAST
from tests.helpers.in_process import train_in_process
from upseg.cli.validation import check_values

WRONG = [
    # (overrides, the key the line must name, what else it must say)
    ("optimizer.lr=-1", "optimizer.lr=-1", "Invalid learning rate: -1 (it takes a number; default 0.001)"),
    ("optimizer.lr=fast", "optimizer.lr='fast'", "it must be a number"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay=-0.1", "Invalid weight_decay value"),
    ("+optimizer.momentum=0.9", "optimizer.momentum", "its options: amsgrad, betas,"),
    ("optimizer=sgd optimizer.momentum=-1", "optimizer.momentum=-1", "Invalid momentum value"),
    ("+scheduler.gamma=0.5", "scheduler.gamma", "its options: budget, last_epoch, optimizer, power,"),
    ("scheduler.power=steep", "scheduler.power='steep'", "it must be a number"),
    ("scheduler=cosine scheduler.eta_min=low", "scheduler.eta_min='low'", "it must be a number"),
    ("trainer.precision=bf17", "trainer.precision='bf17'", "it must be one of 64, 32, 16,"),
    ("trainer.devices=0", "trainer.devices=0", "it takes a list or a string or an int"),
    ("trainer.max_epochs=ten", "trainer.max_epochs='ten'", "it must be an int or null"),
    ("trainer.gradient_clip_val=high", "trainer.gradient_clip_val='high'", "it must be a number or null"),
    ("+trainer.epochs=3", "trainer.epochs", "its options: accelerator,"),
    ("data.batch_size=many", "data.batch_size='many'", "it must be an int"),
    ("data.num_workers=-1", "data.num_workers", "must be 0 (load in the main process) or more"),
    ("data.hflip=maybe", "data.hflip='maybe'", "it must be true or false"),
    ("model.channels_last=maybe", "model.channels_last='maybe'", "it must be true or false"),
    ("model.net.base_width=wide", "model.net.base_width='wide'", "it must be an int"),
    ("model.boundary_dilation_ratio=0", "model.boundary_dilation_ratio", "must be positive (the boundary band"),
    ("decoder.options.kernel_size=big", "decoder.options.kernel_size='big'", "it must be an int or null"),
    ("+decoder.options.stride=2", "decoder.options.stride", "its options: bias, init, kernel_size"),
    ("decoder=carafe decoder.options.up_kernel=4", "up_kernel", "must be a positive odd int"),
    ("callbacks.model_checkpoint.mode=maximum", "callbacks.model_checkpoint.mode='maximum'", "can be min, max"),
    ("callbacks.step_checkpoint.every_n_train_steps=-5", "callbacks.step_checkpoint.every_n_train_steps=-5", ">= 0"),
    ("+logger.csv.flush=1", "logger.csv.flush", "its options: flush_logs_every_n_steps,"),
    ("seed=lucky", "seed='lucky'", "it must be an int or null"),
    ("inference.flip=maybe", "inference.flip='maybe'", "it must be true or false"),
    ("inference.mode=slide inference.crop=20", "inference.crop=20", "is not a multiple of 8, the size multiple of"),
    # Mistakes of the command line itself, found before Hydra would print its several lines:
    (
        "scheduler=cosine scheduler.T_max=0",
        "scheduler.T_max",
        "not a key of scheduler (scheduler=cosine); its keys: eta_min, warmup",
    ),
    (
        "model.net.head_channels=1",
        "model.net.head_channels is not a key of model.net (model=unet_small); its keys: base_width, decoder_channels,",
        "; to add a new key, write +model.net.head_channels=1",
    ),
    ("decoder=foo", "decoder=foo", "not an option of the decoder group; its options: bilinear, carafe, direct,"),
    ("data.scale_range=[2.0,0.5]", "data.scale_range", "must be [low, high] with 0 < low ≤ high"),
    # The architecture's options: a skip level, a stage's upsampler, a timm model that do not exist.
    ("model.net.skips=[7]", "model.net.skips=[7]", "each one of 0, 1, 2 (level i is at stride 2^i"),
    ("decoder.stages=[bilinear,foo,carafe]", "decoder.stages[1]='foo'", "is not an upsampler; valid: bilinear,"),
    ("model.net.encoder=timm:resnet_nonexistent", "model.net.encoder=timm:resnet_nonexistent", "list valid names"),
    # Values only upseg's own checks refuse: the network's, the data's, a checkpoint's, an upsampler's for its stage.
    ("model.net.depth=-1", "model.net.depth", "must be a positive int"),
    ("data.num_classes=1", "data.num_classes", "must be between 2 and 6"),
    ("ckpt_path=/nonexistent/last.ckpt", "ckpt_path /nonexistent/last.ckpt", "does not exist"),
    ("decoder=dysample decoder.options.groups=3", "groups=3", "must divide out_channels=16; valid values: 1, 2, 4, 8"),
    ("decoder=fade +decoder.options.guide_channels=8", "decoder.options.guide_channels", "is set by the model"),
]
# One row for each place a mistake is caught: before Hydra, in torch's optimizer, in Lightning's Trainer, in upseg.
AS_A_USER = ["decoder=foo", "optimizer.lr=-1", "trainer.devices=0", "model.net.depth=-1"]


def test_the_table_covers_every_config_group():
    groups = {key.split(".")[0].split("=")[0] for _, key, _ in WRONG}
    assert len(WRONG) >= 20
    assert {"optimizer", "scheduler", "trainer", "data", "model", "decoder", "callbacks", "logger", "seed"} <= groups


def error_line(stderr: str) -> str:
    (line,) = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    return line


@pytest.mark.parametrize("overrides,key,says", WRONG, ids=[row[0] for row in WRONG])
def test_a_wrong_value_is_one_line_naming_the_key(tmp_path, overrides, key, says):
    status, stderr = train_in_process([*FAST, *overrides.split()], tmp_path)
    assert status == 2, stderr[-3000:]
    line = error_line(stderr)
    assert key in line and says in line, line
    assert not (tmp_path / "checkpoints").exists()  # it stopped before training


@pytest.fixture(scope="module")
def user_runs(scripts, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """The rows of AS_A_USER run as scripts/train.py, two at a time: most of each run is Python importing torch."""
    root = tmp_path_factory.mktemp("wrong_values")

    def run(overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
        folder = root / re.sub(r"[^A-Za-z0-9_.-]", "_", overrides)  # a folder name Hydra's parser reads as a path
        folder.mkdir()
        args = [*scripts.TINY, *scripts.QUIET, *overrides.split(), f"hydra.run.dir={folder / 'run'}"]
        return scripts.run("train.py", *args, root=folder), folder / "run"

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(AS_A_USER, pool.map(run, AS_A_USER), strict=True))


@pytest.mark.parametrize("overrides", AS_A_USER)
def test_the_script_stops_in_one_line_without_a_traceback(user_runs, overrides):
    (key, says) = next((key, says) for row, key, says in WRONG if row == overrides)
    result, run = user_runs[overrides]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    line = error_line(result.stderr)
    assert key in line and says in line, line
    assert not (run / "checkpoints").exists()


def test_values_that_fit_pass():
    def target(rate: float = 0.1, steps: int | None = None, mode: str = "max", flag: bool = False) -> None: ...

    check_values("x", {"rate": 1, "steps": None, "mode": "min", "flag": True}, target)
    with pytest.raises(ValueError, match=r"^x.rate=True is not accepted: it must be a number$"):
        check_values("x", {"rate": True}, target)
