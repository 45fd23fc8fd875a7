"""What the numerical tests saw, printed after every run: how closely ``direct`` matches ``F.conv_transpose2d``
(:class:`EquivalenceRecord`), the worst float64 difference per reference check (:class:`ReferenceRecord`) and what
each export took (:class:`ExportRecord`). Under pytest-xdist each worker fills its own records and hands their
:meth:`state` to the controller, which merges them before printing (``tests/conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


def _worst(difference: dict[str, float], key: str, error: float) -> None:
    difference[key] = max(difference.get(key, 0.0), error)


def _max_abs(expected: torch.Tensor, actual: torch.Tensor) -> float:
    return (expected.detach() - actual.detach()).abs().max().item() if expected.numel() else 0.0


@dataclass
class EquivalenceRecord:
    """Configurations compared and the worst absolute difference seen, per impl and dtype."""

    configurations: dict[str, set[str]] = field(default_factory=dict)
    worst: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, impl: str, config: str, dtype: torch.dtype, expected: torch.Tensor, actual: torch.Tensor) -> None:
        self.configurations.setdefault(impl, set()).add(config)
        _worst(self.worst.setdefault(impl, {}), str(dtype).removeprefix("torch."), _max_abs(expected, actual))

    def state(self) -> dict[str, Any]:
        return {"configurations": {k: sorted(v) for k, v in self.configurations.items()}, "worst": self.worst}

    def merge(self, state: dict[str, Any]) -> None:
        for impl, configurations in state["configurations"].items():
            self.configurations.setdefault(impl, set()).update(configurations)
        for impl, errors in state["worst"].items():
            for dtype, error in errors.items():
                _worst(self.worst.setdefault(impl, {}), dtype, error)

    def lines(self) -> list[str]:
        return [
            f"conv_transpose2d_direct(impl={impl!r}) vs F.conv_transpose2d: {len(configurations)} configurations, "
            "worst |difference| over outputs and gradients: "
            + ", ".join(f"{dtype} {error:.3g}" for dtype, error in sorted(self.worst[impl].items()))
            for impl, configurations in sorted(self.configurations.items())
        ]


@dataclass
class ReferenceRecord:
    """Per reference check (e.g. "carafe vs loop"): how many comparisons and the worst float64 |difference|."""

    checks: dict[str, int] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)

    def add(self, check: str, expected: torch.Tensor, actual: torch.Tensor) -> None:
        assert expected.dtype == actual.dtype == torch.float64, "reference checks are recorded in float64"
        self.checks[check] = self.checks.get(check, 0) + 1
        _worst(self.worst, check, _max_abs(expected, actual))

    def state(self) -> dict[str, Any]:
        return {"checks": self.checks, "worst": self.worst}

    def merge(self, state: dict[str, Any]) -> None:
        for check, count in state["checks"].items():
            self.checks[check] = self.checks.get(check, 0) + count
        for check, error in state["worst"].items():
            _worst(self.worst, check, error)

    def lines(self) -> list[str]:
        return [
            f"{check}: {count} comparisons, worst float64 |difference|: {self.worst[check]:.3g}"
            for check, count in sorted(self.checks.items())
        ]


@dataclass
class ExportRecord:
    """Per ``(network, decoder)``: the sizes each exporter took and its largest difference from eager PyTorch."""

    rows: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        return {"rows": [[network, decoder, row] for (network, decoder), row in self.rows.items()]}

    def merge(self, state: dict[str, Any]) -> None:
        self.rows.update({(network, decoder): row for network, decoder, row in state["rows"]})

    def lines(self) -> list[str]:
        return [
            f"export {network} × {decoder}: " + " | ".join(f"{k}: {v}" for k, v in row.items())
            for (network, decoder), row in sorted(self.rows.items())
        ]


RECORDS = {"equivalence": EquivalenceRecord(), "references": ReferenceRecord(), "export": ExportRecord()}
