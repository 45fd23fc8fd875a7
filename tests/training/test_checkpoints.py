"""Checkpoints are read as weights only: one that would run code when unpickled is refused, in one line, by every
script that loads checkpoints, and its code never runs."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.checkpoints import hostile_checkpoint
from upseg.errors import UpsegError
from upseg.training.checkpoints import CheckpointRefused, read_checkpoint


def test_the_hostile_file_would_really_run_its_code(tmp_path):
    # The check below means something only if unsafe loading does create the marker.
    path, marker = hostile_checkpoint(tmp_path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_read_checkpoint_refuses_it_without_running_it(tmp_path):
    path, marker = hostile_checkpoint(tmp_path)
    with pytest.raises(CheckpointRefused, match=r"was refused: it contains executable objects"):
        read_checkpoint(path)
    assert not marker.exists()
    (tmp_path / "noise.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UpsegError, match="is not a readable upseg checkpoint") as info:
        read_checkpoint(tmp_path / "noise.ckpt")
    assert not isinstance(info.value, CheckpointRefused)


@pytest.mark.parametrize(
    "script,args",
    [
        ("evaluate.py", []),
        ("train.py", ["experiment=quickstart"]),  # resume
        ("train.py", ["experiment=quickstart", "train=false"]),  # test only
        ("predict.py", ["input=."]),
    ],
    ids=["evaluate", "resume", "test-only", "predict"],
)
def test_scripts_refuse_it_in_one_line_and_never_run_it(scripts, tmp_path, script, args):
    path, marker = hostile_checkpoint(tmp_path)
    result = scripts.run(script, *args, f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}", root=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        f"error: ckpt_path {path} was refused: it contains executable objects (Python code that loading it would "
        "run), and upseg loads checkpoints as weights only; use a checkpoint written by scripts/train.py"
    )
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_checkpoint_from_before_model_net_loads_with_its_network_options(tmp_path):
    from upseg.training.checkpoints import module_from_checkpoint
    from upseg.training.module import SegmentationModule

    torch.manual_seed(0)
    net = {"name": "unet", "depth": 2, "base_width": 4}
    module = SegmentationModule(net=net, num_classes=3, decoder={"name": "bilinear", "options": {}})
    old_form = {key: value for key, value in module.hparams.items() if key != "net"}
    old_form |= {"network": "unet", "depth": 2, "base_width": 4}  # how checkpoints stored the network before
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": old_form}, path)

    loaded = module_from_checkpoint(path)
    assert loaded.hparams.net == net and loaded.net.depth == 2
    for key, value in module.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1}}, tmp_path / "other.ckpt")
    with pytest.raises(UpsegError, match="is not an upseg checkpoint"):
        module_from_checkpoint(tmp_path / "other.ckpt")
