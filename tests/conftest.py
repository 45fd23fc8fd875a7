"""Shared test fixtures: the real Hydra configs composed for CPU test runs (as lightning-hydra-template's tests do),
and records of how closely `direct` matches PyTorch and the content-aware upsamplers match their loop references,
printed after every run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

# Two cores in CI: one intra-op thread per test process keeps timings stable and avoids oversubscription.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@dataclass
class EquivalenceRecord:
    """Configurations compared and the worst absolute difference seen, per impl and dtype."""

    configurations: dict[str, set[str]] = field(default_factory=dict)
    worst: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, impl: str, config: str, dtype: torch.dtype, expected: torch.Tensor, actual: torch.Tensor) -> None:
        self.configurations.setdefault(impl, set()).add(config)
        name = str(dtype).removeprefix("torch.")
        error = (expected.detach() - actual.detach()).abs().max().item() if expected.numel() else 0.0
        worst = self.worst.setdefault(impl, {})
        worst[name] = max(worst.get(name, 0.0), error)


@dataclass
class ReferenceRecord:
    """Per reference check (e.g. "carafe vs loop"): how many comparisons and the worst float64 |difference|."""

    checks: dict[str, int] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)

    def add(self, check: str, expected: torch.Tensor, actual: torch.Tensor) -> None:
        assert expected.dtype == actual.dtype == torch.float64, "reference checks are recorded in float64"
        self.checks[check] = self.checks.get(check, 0) + 1
        error = (expected.detach() - actual.detach()).abs().max().item() if expected.numel() else 0.0
        self.worst[check] = max(self.worst.get(check, 0.0), error)


RECORD = EquivalenceRecord()
REFERENCES = ReferenceRecord()


@pytest.fixture(scope="session")
def equivalence_record() -> EquivalenceRecord:
    return RECORD


@pytest.fixture(scope="session")
def reference_record() -> ReferenceRecord:
    return REFERENCES


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    for impl, configurations in sorted(RECORD.configurations.items()):
        worst = ", ".join(f"{dtype} {error:.3g}" for dtype, error in sorted(RECORD.worst[impl].items()))
        terminalreporter.write_line(
            f"conv_transpose2d_direct(impl={impl!r}) vs F.conv_transpose2d: {len(configurations)} configurations, "
            f"worst |difference| over outputs and gradients: {worst}"
        )
    for check, count in sorted(REFERENCES.checks.items()):
        terminalreporter.write_line(
            f"{check}: {count} comparisons, worst float64 |difference|: {REFERENCES.worst[check]:.3g}"
        )


REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(REPO / "configs")

# A few tiny batches of shapes on the CPU, no progress bar.
FAST = [
    "experiment=quickstart",
    "data.num_train=8",
    "data.num_val=4",
    "data.num_test=4",
    "data.image_size=32",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
]


def compose_config(config_name: str, tmp_path: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``configs/<config_name>.yaml`` with ``overrides``, its Hydra runtime set and outputs under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
        cfg.paths.data_dir = str(tmp_path / "data")
        del cfg.hydra  # as in a real run: Hydra's own node lives in HydraConfig, not in the task's config
    return cfg


def compose_train_config(tmp_path: Path, overrides: Sequence[str] = ()) -> DictConfig:
    return compose_config("train", tmp_path, overrides)


@pytest.fixture
def train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_config(*overrides, fast=True)``: a composed training config writing into a fresh temporary folder."""

    def make(*overrides: str, fast: bool = True, output: Path | None = None) -> DictConfig:
        return compose_train_config(output or tmp_path, [*(FAST if fast else []), *overrides])

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture
def compose_configs() -> Callable[..., DictConfig]:
    """``compose_configs(config_name, output_dir, overrides)``: any of the configs/*.yaml, composed for a test."""
    yield compose_config
    GlobalHydra.instance().clear()


class Scripts:
    """Runs ``scripts/<name>`` in a subprocess as a user would: in ``root``, with ``UPSEG_ROOT=root`` so that default
    run folders land there."""

    QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "~callbacks.rich_progress_bar"]
    # One epoch of the quick start on a handful of 32×32 images: seconds, for tests of the scripts' behaviour.
    TINY = [
        "experiment=quickstart",
        "data.num_train=8",
        "data.num_val=4",
        "data.num_test=4",
        "data.image_size=32",
        "trainer.max_epochs=1",
    ]

    @staticmethod
    def command(script: str, *args: str) -> list[str]:
        return [sys.executable, str(REPO / "scripts" / script), *args]

    @staticmethod
    def env(root: Path) -> dict[str, str]:
        return {**os.environ, "UPSEG_ROOT": str(root)}

    def run(self, script: str, *args: str, root: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run to the end; stdout and stderr captured as text."""
        command = self.command(script, *args)
        return subprocess.run(command, cwd=root, env=self.env(root), capture_output=True, text=True, timeout=timeout)

    def start(self, script: str, *args: str, root: Path = REPO) -> subprocess.Popen:
        """Start and return at once (to signal the process), stdout and stderr piped as text."""
        command = self.command(script, *args)
        pipe = subprocess.PIPE
        return subprocess.Popen(command, cwd=root, env=self.env(root), stdout=pipe, stderr=pipe, text=True)


@pytest.fixture(scope="session")
def scripts() -> Scripts:
    return Scripts()
