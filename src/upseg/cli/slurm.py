"""Checks of a run against the SLURM job step it runs in, made before Lightning starts its processes.

Under SLURM, Lightning takes every rank from SLURM (``SLURM_PROCID``, ``SLURM_NTASKS``, …) but the world size from
the trainer: ``trainer.num_nodes × trainer.devices``. When the two disagree, the processes wait for ranks that never
come, until the job's time limit. These checks turn that hang into one line naming the key to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from omegaconf import DictConfig

from upseg.errors import ConfigError

NODE_VARIABLES = ("SLURM_NNODES", "SLURM_JOB_NUM_NODES")  # the job step's node count first: srun -N may use fewer


def slurm_manages_processes(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Lightning will take its ranks from SLURM: the same test as Lightning's ``SLURMEnvironment.detect``
    (``srun`` sets ``SLURM_NTASKS``; a job named ``bash`` or ``interactive`` is an interactive shell, not a step)."""
    return "SLURM_NTASKS" in environ and environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def _integer(environ: Mapping[str, str], name: str) -> int | None:
    try:
        return int(environ[name])
    except (KeyError, ValueError):  # unset, or SLURM's "2(x3)" form, which only the node count check would need
        return None


def check_slurm(trainer_cfg: DictConfig, environ: Mapping[str, str] = os.environ) -> None:
    """Raise :class:`ConfigError` when ``trainer.num_nodes`` or ``trainer.devices`` differ from the SLURM step."""
    if not slurm_manages_processes(environ):
        return
    num_nodes = int(trainer_cfg.get("num_nodes") or 1)
    for name in NODE_VARIABLES:
        nodes = _integer(environ, name)
        if nodes is not None:
            if nodes != num_nodes:
                raise ConfigError(
                    f"trainer.num_nodes={num_nodes} but this SLURM job runs on {nodes} nodes ({name}={nodes}); "
                    f"set trainer.num_nodes={nodes} (hydra/launcher=slurm requests trainer.num_nodes nodes) "
                    f"or ask SLURM for --nodes={num_nodes}"
                )
            break
    devices = trainer_cfg.get("devices")
    tasks = _integer(environ, "SLURM_NTASKS_PER_NODE")
    if isinstance(devices, int) and tasks is not None and tasks != devices:
        raise ConfigError(
            f"trainer.devices={devices} but SLURM starts {tasks} tasks per node (SLURM_NTASKS_PER_NODE={tasks}) "
            f"and Lightning runs one process per task; set trainer.devices={tasks} or ask SLURM for "
            f"--ntasks-per-node={devices} (hydra/launcher=slurm requests trainer.devices tasks per node)"
        )
