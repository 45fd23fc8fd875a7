"""Plan a run from its dataset (``plan=true``, set by ``experiment=auto``; ``scripts/plan.py`` prints it alone).

:func:`make_plan` reads the training images once (the datamodule's training pool: before any validation carve),
takes their :class:`~upseg.planning.fingerprint.Fingerprint`, the device, the memory and the network's minimum input
size, and applies the rules of :mod:`upseg.planning.rules`. :func:`apply_plan` sets each choice on the config
unless the user gave that key on the command line (the user's overrides beat the plan's) or the config has no such
key (``loss=ce`` has no ``dice_weight``). Then one training step is timed at the planned size, which says how many
steps ``trainer.max_time`` buys (and so how long an epoch between validations is), and refuses a budget shorter
than one step. The plan is printed, and saved as
``plan.yaml`` in the run folder: the fingerprint, every choice with its reason and whether it was applied, and the
overrides that reproduce it.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from upseg.cli.validation import check_config, check_trainer
from upseg.data.datamodule import default_num_workers
from upseg.errors import ConfigError
from upseg.models import build_network
from upseg.planning.fingerprint import Fingerprint, fingerprint
from upseg.planning.measure import seconds_per_step
from upseg.planning.rules import SLIDING_WINDOW_KEY, Choice, Context, epoch_length, plan_choices

PLAN_FILE = "plan.yaml"
CARVE_PLACEHOLDER = 0.5  # only to build a datamodule whose training pool is read before any carve
_ABSENT = object()


def override_value(value: Any) -> str:
    """A value as a Hydra override writes it: ``null``, ``true``, ``[0.8,1.25]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    return str(value)


@dataclass
class Plan:
    fingerprint: Fingerprint
    choices: list[Choice]
    status: dict[str, str] = field(default_factory=dict)  # key → planned | yours: <value> | not in this config
    seconds_per_step: float | None = None
    budget_seconds: float | None = None

    @property
    def overrides(self) -> list[str]:
        """``key=value`` command-line overrides of the applied choices."""
        return [f"{c.key}={override_value(c.value)}" for c in self.choices if self.status.get(c.key) == "planned"]

    def as_dict(self) -> dict[str, Any]:
        steps = (
            int(self.budget_seconds / self.seconds_per_step) if self.budget_seconds and self.seconds_per_step else None
        )
        return {
            "fingerprint": self.fingerprint.summary(),
            "choices": [
                {"key": c.key, "value": c.value, "reason": c.reason, "status": self.status.get(c.key, "")}
                for c in self.choices
            ],
            "seconds_per_step": round(self.seconds_per_step, 4) if self.seconds_per_step else None,
            "budget_seconds": self.budget_seconds,
            "steps_in_budget": steps,
            "overrides": self.overrides,
        }


def budget_seconds(max_time: Any) -> float | None:
    """``trainer.max_time`` in seconds: ``"DD:HH:MM:SS"``, a mapping of timedelta arguments, or null."""
    if max_time is None:
        return None
    if isinstance(max_time, str):
        match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", max_time.strip())
        if not match:
            raise ConfigError(f"trainer.max_time={max_time!r} must be DD:HH:MM:SS, e.g. 00:00:10:00 for 10 minutes")
        days, hours, minutes, seconds = map(int, match.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds()
    if isinstance(max_time, DictConfig | dict):
        arguments = OmegaConf.to_container(max_time) if isinstance(max_time, DictConfig) else max_time
        return timedelta(**arguments).total_seconds()
    return None


def device_of(trainer_cfg: DictConfig) -> torch.device:
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def available_memory(device: torch.device) -> int:
    """Bytes the cache may use: the host's available memory (the cache lives there, whatever the device)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def training_pool(data_cfg: DictConfig) -> tuple[Any, bool, Any]:
    """``(datamodule, whether validation is carved from the training images, the training images before any carve)``."""
    data = OmegaConf.to_container(data_cfg, resolve=True)
    folders = "val_fraction" in data and not data.get("splits")
    if folders and data.get("val_fraction") is None:
        data["val_fraction"] = CARVE_PLACEHOLDER
    datamodule = instantiate(data)
    carves = folders and (data_cfg.get("val_fraction") is not None or not datamodule.has_val_folders())
    pool = datamodule.training_pool() if hasattr(datamodule, "training_pool") else datamodule.raw_dataset("train")
    return datamodule, carves, pool


def explicit_keys() -> set[str]:
    """The config keys the command line set (``data.crop_size=96`` → ``data.crop_size``), from Hydra's record."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return set()
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    return {override.key_or_group for override in overrides}


def make_plan(cfg: DictConfig) -> Plan:
    """The plan of ``cfg``'s dataset, model and budget (nothing applied yet)."""
    datamodule, carves, pool = training_pool(cfg.data)
    network = build_network(num_classes=datamodule.num_classes, decoder=cfg.decoder, **cfg.model.net)
    device = device_of(cfg.trainer)
    workers = cfg.data.get("num_workers")
    workers = default_num_workers() if workers is None else workers
    context = Context(
        device=device.type,
        memory_bytes=available_memory(device),
        loader_processes=max(1, workers),
        carves_validation=carves,
        min_input_size=network.size_multiple,
        sliding_window=OmegaConf.select(cfg, SLIDING_WINDOW_KEY, default=_ABSENT) is not _ABSENT,
    )
    where = f"the training set of data={cfg.data.get('name') or cfg.data._target_.rsplit('.', 1)[-1]}"
    prints = fingerprint(pool, datamodule.num_classes, datamodule.ignore_index)
    budget = budget_seconds(cfg.trainer.get("max_time"))
    return Plan(prints, plan_choices(prints, context, where), budget_seconds=budget)


def apply_plan(cfg: DictConfig, plan: Plan, explicit: set[str]) -> DictConfig:
    """A copy of ``cfg`` with the plan's choices set, except keys in ``explicit`` and keys ``cfg`` lacks."""
    cfg = copy.deepcopy(cfg)
    for choice in plan.choices:
        current = OmegaConf.select(cfg, choice.key, default=_ABSENT)
        if choice.key in explicit:
            plan.status[choice.key] = f"yours: {current}"
        elif current is _ABSENT:
            plan.status[choice.key] = "not in this config"
        else:
            OmegaConf.update(cfg, choice.key, choice.value, merge=False)
            plan.status[choice.key] = "planned"
    return cfg


def time_a_step(cfg: DictConfig, plan: Plan) -> None:
    """Time one training step at the config's (planned) batch and crop; a budget shorter than that is refused."""
    classes = len(plan.fingerprint.class_pixels)
    network = build_network(num_classes=classes, decoder=cfg.decoder, **cfg.model.net)
    crop = cfg.data.get("crop_size")
    size = plan.fingerprint.median_size if crop is None else ((crop, crop) if isinstance(crop, int) else tuple(crop))
    plan.seconds_per_step = seconds_per_step(network, cfg.data.batch_size, size, classes, device_of(cfg.trainer))
    if plan.budget_seconds is not None and plan.budget_seconds < plan.seconds_per_step:
        raise ConfigError(
            f"trainer.max_time={cfg.trainer.max_time} is shorter than one training step ({plan.seconds_per_step:.2f} s "
            f"measured for a batch of {cfg.data.batch_size} at {size[0]}×{size[1]}); give it at least "
            f"trainer.max_time={duration(math.ceil(plan.seconds_per_step))}"
        )


def duration(seconds: int) -> str:
    """``DD:HH:MM:SS``, as trainer.max_time takes it."""
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{seconds:02d}"


def print_plan(plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = plan.as_dict()
    table = Table(title="upseg plan (python scripts/plan.py …; every choice can be overridden on the command line)")
    for column in ("key", "value", "status", "why"):
        table.add_column(column)
    for choice in summary["choices"]:
        table.add_row(choice["key"], override_value(choice["value"]), choice["status"], choice["reason"])
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # rich would wrap a piped table at 80 columns
    shown = {key: value for key, value in summary["fingerprint"].items() if key != "class_pixels"}
    console.print("fingerprint: " + ", ".join(f"{key} {value}" for key, value in shown.items()), markup=False)
    console.print(table)
    if summary["seconds_per_step"]:
        steps = f", ≈ {summary['steps_in_budget']:,} steps in trainer.max_time" if summary["steps_in_budget"] else ""
        console.print(f"one training step: {summary['seconds_per_step']:.3f} s{steps}", markup=False)
    console.print("as overrides: " + " ".join(summary["overrides"]), markup=False)


def plan_task(cfg: DictConfig) -> dict[str, Any]:
    """What ``scripts/plan.py`` runs: check the config, plan, print and save the plan (nothing is trained)."""
    check_config(cfg)
    check_trainer(cfg.trainer)
    output_dir = OmegaConf.select(cfg, "paths.output_dir")
    return plan_run(cfg, Path(output_dir) if output_dir else None)[1].as_dict()


def plan_run(cfg: DictConfig, output_dir: Path | None) -> tuple[DictConfig, Plan]:
    """Plan, apply (the command line's own keys win), time a step, print, and save ``plan.yaml`` in ``output_dir``."""
    plan = make_plan(cfg)
    explicit = explicit_keys()
    planned = apply_plan(cfg, plan, explicit)
    time_a_step(planned, plan)
    if plan.status.get("data.samples_per_epoch") == "planned":  # the timed step sets how often to validate
        timed = epoch_length(plan.fingerprint, planned.data.batch_size, plan.budget_seconds, plan.seconds_per_step)
        plan.choices = [timed if choice.key == timed.key else choice for choice in plan.choices]
        OmegaConf.update(planned, timed.key, timed.value, merge=False)
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank == 0:
        print_plan(plan)
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / PLAN_FILE).write_text(yaml.safe_dump(plan.as_dict(), sort_keys=False, allow_unicode=True))
    return planned, plan
