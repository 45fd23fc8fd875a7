"""SIGTERM ends a sweep wherever it lands: a job it stopped is not recorded as failed and the next job does not start;
``resume=true`` then finishes the sweep. Without SIGTERM a failed job is recorded and the sweep goes on."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

import upseg.cli.task as task_module
from upseg.cli.task import TERMINATED_STATUS, run_task

SMALL_MODEL = ["model.net.depth=2", "model.net.base_width=8"]


@pytest.fixture
def in_a_sweep(monkeypatch) -> list[Exception]:
    """run_task as a sweep runs it; the failures it records."""
    recorded: list[Exception] = []
    monkeypatch.setattr(task_module, "in_multirun", lambda: True)
    monkeypatch.setattr(task_module, "record_failure", lambda error, cause: recorded.append(error))
    return recorded


def sigterm_then(outcome):
    def job():
        os.kill(os.getpid(), signal.SIGTERM)  # the noting handler runs before the next line
        return outcome()

    return job


def fail():
    raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")


def lightning_stops():
    raise SIGTERMException  # what Lightning raises in a fit or test loop after SIGTERM: a SystemExit without status


def test_a_failed_sweep_job_is_recorded_and_the_sweep_goes_on(in_a_sweep):
    assert run_task(fail) is None
    assert [str(error) for error in in_a_sweep] == ["DataLoader worker (pid 1) is killed by signal: Terminated."]


@pytest.mark.parametrize(
    "outcome", [fail, lambda: "metrics", lightning_stops], ids=["job-fails", "job-finishes", "lightning-stops"]
)
def test_sigterm_during_a_sweep_job_ends_the_sweep_after_it_without_recording_a_failure(in_a_sweep, outcome, capsys):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as ended:
        run_task(sigterm_then(outcome))
    assert ended.value.code == TERMINATED_STATUS and in_a_sweep == []
    assert "the sweep ends here; the same command with resume=true continues it" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the sweep job's only


def final_step(checkpoint: Path) -> int:
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]
    except Exception:
        return -1


def wait_for_step(process, checkpoint: Path, step: int, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while final_step(checkpoint) < step:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{checkpoint} did not reach step {step} within {seconds} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_sigterm_after_a_jobs_fit_ends_the_sweep_and_resume_finishes_it(scripts, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *scripts.TINY, *SMALL_MODEL, *scripts.QUIET, "decoder=transpose,bilinear", "seed=0"]
    args += ["trainer.max_epochs=2", "data.num_test=64", f"hydra.sweep.dir={sweep}"]
    process = scripts.start("train.py", *args, root=tmp_path)
    steps = 2  # 8 training images, batches of 8, 2 epochs
    wait_for_step(process, sweep / "0" / "checkpoints" / "last.ckpt", steps)  # job 0's fit is over: testing next
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    # Before: SIGTERM while testing ended the sweep with status 0, or killed it, or failed the job and went on.
    assert process.returncode == TERMINATED_STATUS, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "SIGTERM during job 0: the sweep ends here; the same command with resume=true continues it" in stderr
    assert not (sweep / "0" / "error.txt").exists() and not (sweep / "1").exists()

    resumed = scripts.run("train.py", *args, "resume=true", root=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (sweep / "0" / "metrics.json").is_file() and (sweep / "1" / "metrics.json").is_file()


@pytest.mark.slow
def test_sigterm_during_a_jobs_fit_says_the_sweep_resumes_it(scripts, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *scripts.TINY, *SMALL_MODEL, *scripts.QUIET, "decoder=transpose,bilinear", "seed=0"]
    args += ["trainer.max_epochs=50", f"hydra.sweep.dir={sweep}"]
    process = scripts.start("train.py", *args, root=tmp_path)
    wait_for_step(process, sweep / "0" / "checkpoints" / "last.ckpt", 2)  # job 0 is fitting: 2 of its 50 epochs done
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == TERMINATED_STATUS, stderr[-3000:]
    (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted by SIGTERM")]
    # Not a single run's ckpt_path= command: that would train job 0 outside its sweep folder.
    assert line.endswith(
        "this sweep job runs again from the start when the sweep's command is run again with resume=true"
    )
    assert not (sweep / "0" / "error.txt").exists() and not (sweep / "1").exists()
