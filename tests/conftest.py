"""Shared test fixtures: the real Hydra configs composed for CPU test runs (:mod:`tests.helpers.configs`), the scripts
run as a user would (:mod:`tests.helpers.scripts`), and the records of :mod:`tests.helpers.records` (how closely
`direct` and the content-aware upsamplers match their references, what each export took), printed after every run,
merged from the workers when pytest-xdist runs several."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers.configs import FAST, compose_config
from tests.helpers.records import RECORDS, EquivalenceRecord, ExportRecord, ReferenceRecord
from tests.helpers.scripts import Scripts

# Two cores in CI: at most two intra-op threads per test process, and one per worker when pytest-xdist runs several
# (their threads would otherwise contend for the same cores).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))


@pytest.fixture(scope="session")
def equivalence_record() -> EquivalenceRecord:
    return RECORDS["equivalence"]


@pytest.fixture(scope="session")
def reference_record() -> ReferenceRecord:
    return RECORDS["references"]


@pytest.fixture(scope="session")
def export_record() -> ExportRecord:
    return RECORDS["export"]


def pytest_sessionfinish(session):
    worker_output = getattr(session.config, "workeroutput", None)  # present on a pytest-xdist worker only
    if worker_output is not None:
        worker_output["records"] = json.dumps({name: record.state() for name, record in RECORDS.items()})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # noqa: ARG001  (pytest-xdist's controller, as each worker ends)
    state = getattr(node, "workeroutput", {}).get("records")
    for name, record_state in (json.loads(state) if state else {}).items():
        RECORDS[name].merge(record_state)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    for record in RECORDS.values():
        for line in record.lines():
            terminalreporter.write_line(line)


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
