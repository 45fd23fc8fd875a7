"""The metric catalogue is the one place a metric is written: a metric registered there alone is logged by the
LightningModule and shown by every renderer — the training summary (printed and ``metrics.json``), ``evaluate.py``'s
table and ``metrics.json``, and the comparison's columns. Per-class values have one nested form throughout."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from omegaconf import OmegaConf
from torchmetrics import Metric

from upseg.analysis.compare import compare
from upseg.evaluation.evaluate import evaluate
from upseg.metrics.catalogue import METRICS, MetricContext, MetricSpec, StageMetrics, nest, register_metric
from upseg.training.train import train


class ValidFraction(Metric):
    """The fraction of pixels whose target is not ignored: a metric no code of upseg knows."""

    def __init__(self, ignore_index: int) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.add_state("valid", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, predictions: torch.Tensor, target: torch.Tensor) -> None:
        self.valid += (target != self.ignore_index).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.valid / self.total


@pytest.fixture
def dummy_metric(monkeypatch):
    monkeypatch.setattr("upseg.metrics.catalogue.METRICS", dict(METRICS))
    return register_metric(MetricSpec("valid_fraction", "valid fraction", lambda c: ValidFraction(c.ignore_index)))


def test_a_registered_metric_reaches_every_renderer(dummy_metric, train_config, compose_configs, tmp_path, capsys):
    summary = train(train_config())
    printed = capsys.readouterr().out
    assert summary["test/valid_fraction"] == pytest.approx(1.0)  # shapes has no ignored pixels
    assert json.loads((tmp_path / "metrics.json").read_text())["test/valid_fraction"] == summary["test/valid_fraction"]
    assert "valid fraction final" in printed
    with open(tmp_path / "csv" / "metrics.csv") as f:
        assert "val/valid_fraction" in next(csv.reader(f))  # logged at validation too

    evaluated = evaluate(
        compose_configs(
            "evaluate",
            tmp_path / "evaluate",
            [f"ckpt_path={summary['last_ckpt']}", "trainer=cpu", "trainer.enable_progress_bar=false", "num_pictures=1"],
        )
    )
    assert evaluated["test/valid_fraction"] == pytest.approx(1.0)
    assert "valid fraction" in capsys.readouterr().out

    for seed in (0, 1):
        run = tmp_path / "sweep" / str(seed)
        (run / ".hydra").mkdir(parents=True)
        OmegaConf.save({"decoder": {"name": "transpose"}, "seed": seed}, run / ".hydra" / "config.yaml")
        shutil.copy(tmp_path / "metrics.json", run / "metrics.json")
    compare(tmp_path / "sweep")
    with open(tmp_path / "sweep" / "comparison.csv") as f:
        assert "test/valid_fraction" in next(csv.reader(f))
    assert "valid fraction final" in (tmp_path / "sweep" / "comparison.md").read_text()


def test_per_class_values_are_logged_flat_and_written_nested():
    names = ["background", "vessel"]
    metrics = StageMetrics("test", MetricContext(2, 255), names)
    target = torch.tensor([[[0, 1, 1, 255]]])
    logits = torch.tensor([[[[2.0, -1.0, -1.0, 0.0]], [[-2.0, 1.0, 1.0, 0.0]]]])  # predicts 0, 1, 1, (0)
    metrics.update(logits, target, 255)
    logged = metrics.compute()
    assert {"test/IoU/background", "test/IoU/vessel", "test/Dice/vessel", "test/binary/Dice"} <= set(logged)
    nested = nest(logged)
    assert nested["test/IoU"] == {"background": 1.0, "vessel": 1.0}
    assert nested["test/binary/Dice"] == 1.0 and isinstance(nested["test/mIoU"], float)
    assert nest({"test/Dice/vessel": 0.5}, "best/") == {"best/test/Dice": {"vessel": 0.5}}


def test_two_class_metrics_are_left_out_for_more_classes():
    three = StageMetrics("test", MetricContext(3, 255), ["a", "b", "c"]).specs
    assert not any(spec.classes == 2 for spec in three.values())
    assert any(spec.classes == 2 for spec in StageMetrics("test", MetricContext(2, 255), ["a", "b"]).specs.values())


def test_a_metric_key_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_metric(METRICS["mIoU"])
