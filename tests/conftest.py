"""Shared test fixtures: the real Hydra configs composed for CPU test runs (:mod:`tests.helpers.configs`), the scripts
run as a user would (:mod:`tests.helpers.scripts`), and records of how closely `direct` matches PyTorch and the
content-aware upsamplers match their loop references, printed after every run."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers.configs import FAST, compose_config
from tests.helpers.scripts import Scripts

# Two cores in CI: at most two intra-op threads per test process, and one per worker when pytest-xdist runs several
# (their threads would otherwise contend for the same cores).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))


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


@pytest.fixture
def train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_config(*overrides, fast=True)``: a composed training config writing into a fresh temporary folder."""

    def make(*overrides: str, fast: bool = True, output: Path | None = None) -> DictConfig:
        return compose_config("train", output or tmp_path, [*(FAST if fast else ()), *overrides])

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture
def compose_configs() -> Callable[..., DictConfig]:
    """``compose_configs(config_name, output_dir, overrides)``: any of the configs/*.yaml, composed for a test."""
    yield compose_config
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def scripts() -> Scripts:
    return Scripts()
