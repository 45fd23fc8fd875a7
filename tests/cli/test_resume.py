"""Resumable sweeps: ``resume=true`` on an existing sweep folder keeps the complete runs byte for byte (their
``.hydra/`` record included), sets aside what an unfinished or failed run left, with its record, and runs it again,
and ends in the comparison of all; a sweep whose config differs from the folder's is refused in one line naming the
keys, and a single run is told how it resumes."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from upseg.cli.resume import check_resumable
from upseg.cli.run_folders import KeepEarlierRuns
from upseg.errors import ConfigError

SMALL_MODEL = ["model.net.depth=2", "model.net.base_width=8"]


def hashes(folder: Path, outputs_only: bool = False) -> dict[str, str]:
    """A hash of every file under ``folder``; ``outputs_only``: a run's outputs, without ``.hydra/`` and the log,
    which Hydra writes again for every job."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not (outputs_only and (".hydra" in path.parts or path.suffix == ".log"))
    }


def outputs(folder: Path) -> dict[str, str]:
    return hashes(folder, outputs_only=True)


def record(folder: Path) -> dict[str, str]:
    """A run's ``.hydra/`` record: the command, config and machine that made it."""
    return hashes(folder / ".hydra")


@pytest.mark.slow
def test_a_resumed_sweep_keeps_complete_runs_reruns_the_others_and_refuses_another_config(scripts, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    args = ["-m", *scripts.TINY, *SMALL_MODEL, *scripts.QUIET, "decoder=transpose,bilinear", "seed=0"]
    args.append(f"hydra.sweep.dir={sweep}")
    first = scripts.run("train.py", *args, root=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    complete, complete_record = outputs(sweep / "0"), record(sweep / "0")
    assert set(complete_record) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    (sweep / "1" / "metrics.json").unlink()  # job 1 as a crash leaves it: no metrics.json
    (sweep / "1" / "error.txt").write_text("killed\n")
    unfinished, unfinished_record = outputs(sweep / "1"), record(sweep / "1")

    second = scripts.run("train.py", *args, "resume=true", root=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"note: resuming the sweep in {sweep}" in second.stderr
    assert outputs(sweep / "0") == complete  # kept, not trained again
    assert record(sweep / "0") == complete_record  # the run's own record, not the resuming command's
    assert "is complete (metrics.json); kept" in (sweep / "0" / "train.log").read_text()
    assert outputs(sweep / ".earlier_attempts" / "1_1") == unfinished  # set aside, nothing deleted
    assert record(sweep / ".earlier_attempts" / "1_1") == unfinished_record
    assert record(sweep / "1") != unfinished_record  # the new attempt's own record (resume=true)
    assert not [path for path in (sweep / ".job_records").rglob("*") if path.is_file()]  # every copy put back
    assert (sweep / "1" / "metrics.json").is_file() and not (sweep / "1" / "error.txt").exists()
    with open(sweep / "comparison.csv") as f:
        assert [(row["decoder"], row["status"]) for row in csv.DictReader(f)] == [
            ("transpose", "ok"),
            ("bilinear", "ok"),
        ]

    # The same sweep with another learning rate and other decoders: refused, naming both, in one line (exit 2).
    changed = OmegaConf.load(sweep / "multirun.yaml")
    with open_dict(changed):
        changed.optimizer.lr = 0.1
        changed.resume = True
        changed.hydra.overrides.task = [
            "decoder=transpose,carafe" if line.startswith("decoder=") else line for line in changed.hydra.overrides.task
        ] + ["resume=true"]
    with pytest.raises(
        ConfigError,
        match=r"keys that differ: optimizer.lr \(0.003 → 0.1\); decoder \(swept\) \(transpose,bilinear → "
        r"transpose,carafe\); resume it with the arguments it was started with",
    ):
        check_resumable(changed, sweep)
    with pytest.raises(SystemExit) as stopped:
        KeepEarlierRuns().on_multirun_start(changed)
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: resume=true: the sweep in {sweep} was started with another config")


def test_resume_of_a_single_run_says_how_a_run_resumes(capsys):
    with pytest.raises(SystemExit) as stopped:
        KeepEarlierRuns().on_run_start(OmegaConf.create({"resume": True, "hydra": {"run": {"dir": "x"}}}))
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: resume=true continues a sweep") and "ckpt_path=<run>/checkpoints/last.ckpt" in line


def test_a_folder_without_a_sweep_cannot_be_resumed(tmp_path):
    (tmp_path / "notes.txt").write_text("not a sweep")
    config = OmegaConf.create(
        {"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}}}
    )
    with pytest.raises(ConfigError, match="holds files but no multirun.yaml"):
        check_resumable(config, tmp_path)
    config.hydra.sweeper._target_ = "hydra_plugins.upseg_optuna_sweeper.optuna_sweeper.UpsegOptunaSweeper"
    with pytest.raises(ConfigError, match="an Optuna search continues through its storage"):
        check_resumable(config, tmp_path)
