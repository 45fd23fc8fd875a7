"""A SLURM job whose node or task count differs from the trainer's stops in one line (exit status 2) instead of
hanging while its processes wait for ranks that never come."""

from __future__ import annotations

import pytest

from upseg.cli.validation import check_trainer
from upseg.errors import ConfigError

DDP_CPU = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.sync_batchnorm=false", "trainer.precision=32-true"]
SLURM_VARIABLES = ("SLURM_NTASKS", "SLURM_JOB_NAME", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", "SLURM_NTASKS_PER_NODE")


@pytest.fixture
def slurm_step(monkeypatch):
    """``slurm_step(nodes, tasks_per_node, job_name)``: the variables srun sets in each task of a job step."""
    for name in SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def set_step(nodes: int, tasks_per_node: int, job_name: str = "train", node_variable: str = "SLURM_NNODES"):
        monkeypatch.setenv("SLURM_NTASKS", str(nodes * tasks_per_node))
        monkeypatch.setenv("SLURM_JOB_NAME", job_name)
        monkeypatch.setenv(node_variable, str(nodes))
        monkeypatch.setenv("SLURM_NTASKS_PER_NODE", str(tasks_per_node))

    return set_step


@pytest.mark.parametrize("node_variable", ["SLURM_NNODES", "SLURM_JOB_NUM_NODES"])
def test_num_nodes_must_match_the_allocation(train_config, slurm_step, node_variable):
    slurm_step(nodes=2, tasks_per_node=2, node_variable=node_variable)
    with pytest.raises(ConfigError, match=rf"trainer.num_nodes=1 but this SLURM job runs on 2 nodes \({node_variable}"):
        check_trainer(train_config(*DDP_CPU).trainer)
    check_trainer(train_config(*DDP_CPU, "trainer.num_nodes=2").trainer)  # matching: no error


def test_devices_must_match_the_tasks_per_node(train_config, slurm_step):
    slurm_step(nodes=1, tasks_per_node=1)
    with pytest.raises(ConfigError, match=r"trainer.devices=2 but SLURM starts 1 tasks per node"):
        check_trainer(train_config(*DDP_CPU).trainer)


def test_an_interactive_allocation_is_not_checked(train_config, slurm_step):
    # salloc's shell (job name "interactive"): Lightning does not take ranks from SLURM there, nor do we.
    slurm_step(nodes=2, tasks_per_node=1, job_name="interactive")
    check_trainer(train_config(*DDP_CPU).trainer)


def test_the_script_says_so_in_one_line_and_exits_2(scripts, slurm_step, tmp_path):
    slurm_step(nodes=2, tasks_per_node=2)  # the subprocess inherits the variables
    result = scripts.run("train.py", *scripts.TINY, *scripts.QUIET, *DDP_CPU, root=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: trainer.num_nodes=1 but this SLURM job runs on 2 nodes (SLURM_NNODES=2); set trainer.num_nodes=2 "
        "(hydra/launcher=slurm requests trainer.num_nodes nodes) or ask SLURM for --nodes=1"
    )
    assert "Traceback" not in result.stderr
