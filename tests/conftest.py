"""Shared test fixtures: a record of how closely `direct` matches PyTorch, printed after every run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import torch

# Two cores in CI: one intra-op thread per test process keeps timings stable and avoids oversubscription.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@dataclass
class EquivalenceRecord:
    """Configurations compared and the worst absolute difference seen, per dtype."""

    configurations: set[str] = field(default_factory=set)
    worst: dict[str, float] = field(default_factory=dict)

    def add(self, config: str, dtype: torch.dtype, expected: torch.Tensor, actual: torch.Tensor) -> None:
        self.configurations.add(config)
        name = str(dtype).removeprefix("torch.")
        error = (expected.detach() - actual.detach()).abs().max().item() if expected.numel() else 0.0
        self.worst[name] = max(self.worst.get(name, 0.0), error)


RECORD = EquivalenceRecord()


@pytest.fixture(scope="session")
def equivalence_record() -> EquivalenceRecord:
    return RECORD


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if RECORD.configurations:
        worst = ", ".join(f"{dtype} {error:.3g}" for dtype, error in sorted(RECORD.worst.items()))
        terminalreporter.write_line(
            f"conv_transpose2d_direct vs F.conv_transpose2d: {len(RECORD.configurations)} configurations, "
            f"worst |difference| over outputs and gradients: {worst}"
        )
