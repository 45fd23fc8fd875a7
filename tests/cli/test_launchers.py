"""Many runs through hydra-submitit-launcher: ``hydra/launcher=slurm`` asks SLURM for the trainer's shape, a sweep
with ``hydra/launcher=submitit_local`` runs each job in a process of its own and ends with the comparison, and a
launcher or sweeper whose extra is missing is named with its ``pip install`` in one line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from upseg.cli.extras import missing_extra

REPO = Path(__file__).resolve().parents[2]
SMALL_MODEL = ["model.net.depth=2", "model.net.base_width=8"]


def test_the_slurm_preset_asks_for_the_trainer_shape(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='needs pip install -e ".[slurm]"')
    import submitit

    GlobalHydra.instance().clear()
    overrides = ["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2", "trainer.devices=4"]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "hydra.launcher.partition=gpu"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (2, 4, 4)

    # The sbatch script submitit would submit, as the launcher builds it (without a cluster: a stand-in srun).
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path(sys.executable).parent}:/usr/bin:/bin")
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "submitit")
    base = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name"}
    executor.update_parameters(
        **{
            key if key in base else f"slurm_{key}": value
            for key, value in params.items()
            if key not in {"_target_", "submitit_folder", "max_num_timeout", "stderr_to_stdout"}
        }
    )
    script = executor._executor._make_submission_file_text("python -u train", "uid")
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=240"):
        assert f"#SBATCH {line}\n" in script, script


@pytest.mark.slow
def test_submitit_local_runs_each_job_in_its_own_process_and_compares(scripts, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='needs pip install -e ".[slurm]"')
    sweep = tmp_path / "sweep"
    process = scripts.start(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        *scripts.TINY,
        *SMALL_MODEL,
        *scripts.QUIET,
        "decoder=transpose,bilinear",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        root=tmp_path,
    )
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]
    with open(sweep / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(row["decoder"], row["seed"], row["status"]) for row in rows] == [
        ("transpose", "0", "ok"),
        ("transpose", "1", "ok"),
        ("bilinear", "0", "ok"),
        ("bilinear", "1", "ok"),
    ]
    # submitit's local executor names each job folder after the process it started for the job.
    jobs = {path.name for path in (sweep / ".submitit").iterdir() if path.name.isdigit()}
    assert len(jobs) == 4 and str(process.pid) not in jobs
    assert "| transpose | 2 |" in stdout and "| bilinear | 2 |" in stdout  # the comparison, printed at the end


@pytest.mark.parametrize(
    ("argument", "module", "extra"),
    [
        ("hydra/launcher=submitit_slurm", "hydra_plugins.hydra_submitit_launcher", "slurm"),
        ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "slurm"),
        ("hparams_search=optuna", "optuna", "search"),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_install(argument, module, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # what find_spec reports for a module that is not installed
    message = missing_extra(["-m", argument, "seed=0,1"])
    assert message is not None and message.endswith(f'install it with: pip install -e ".[{extra}]"')
    assert missing_extra(["-m", "decoder=transpose,bilinear"]) is None


def test_the_script_stops_in_one_line_when_the_launcher_is_not_installed(tmp_path):
    # The script as a user runs it, in a Python that cannot import the launcher.
    program = (
        "import runpy, sys; sys.modules['hydra_plugins.hydra_submitit_launcher'] = None; "
        f"sys.argv = [{str(REPO / 'scripts' / 'train.py')!r}, '-m', 'hydra/launcher=submitit_slurm', 'seed=0,1']; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: hydra/launcher=submitit_slurm needs hydra-submitit-launcher, which is not installed; "
        'install it with: pip install -e ".[slurm]"'
    ]
