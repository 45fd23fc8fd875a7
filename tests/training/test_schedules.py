"""The budget-following schedules (upseg.training.schedules): PyTorch's PolynomialLR and CosineAnnealingLR when only
steps bound the run; annealed by the end of a run cut by ``max_time``, read from a fake clock."""

from __future__ import annotations

import io
import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch.optim.lr_scheduler import CosineAnnealingLR, PolynomialLR

from upseg.training.build import build_module
from upseg.training.schedules import Budget, CosineLR, PolyLR

BASE_LR = 0.1


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)


def rates(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int, tick=lambda: None) -> list[float]:
    """The learning rate before each of ``steps`` steps, then after the last; ``tick()`` after each step."""
    seen = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        tick()
        scheduler.step()
        seen.append(scheduler.get_last_lr()[0])
    return seen


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("ours", "torchs"),
    [
        (lambda o: PolyLR(o, total_iters=12, power=0.9), lambda o: PolynomialLR(o, total_iters=12, power=0.9)),
        (lambda o: CosineLR(o, T_max=12, eta_min=0.01), lambda o: CosineAnnealingLR(o, T_max=12, eta_min=0.01)),
    ],
)
def test_without_a_time_limit_the_schedules_are_pytorchs(ours, torchs):
    torch.testing.assert_close(rates(ours(optimizer()), 12), rates(torchs(optimizer()), 12))


def test_a_run_cut_by_time_ends_annealed_whatever_its_step_count():
    clock = FakeClock()
    # 1000 steps allowed, but 10 seconds at 1 s per step: time runs out first, at step 10.
    budget = Budget(steps=1000, seconds=10.0, elapsed=clock)
    seen = rates(PolyLR(optimizer(), power=0.9, budget=budget), 10, lambda: clock.advance(1.0))
    expected = [BASE_LR * (1 - min(1.0, k / 10)) ** 0.9 for k in range(11)]
    torch.testing.assert_close(seen, expected)
    assert seen[-1] == 0.0
    # The step limit is the nearer one: steps decide.
    clock = FakeClock()
    budget = Budget(steps=4, seconds=1000.0, elapsed=clock)
    seen = rates(CosineLR(optimizer(), budget=budget), 4, lambda: clock.advance(1.0))
    torch.testing.assert_close(seen, [BASE_LR * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(5)])


def test_warm_up_rises_linearly_then_the_decay_spans_the_rest_of_the_budget():
    clock = FakeClock()
    budget = Budget(steps=None, seconds=20.0, elapsed=clock)
    seen = rates(PolyLR(optimizer(), power=1.0, warmup=0.2, budget=budget), 20, lambda: clock.advance(1.0))
    # p = k/20: warm-up to p = 0.2 (k = 4), then linear decay over the remaining 0.8.
    expected = [BASE_LR * (k / 4 if k < 4 else 1 - (k / 20 - 0.2) / 0.8) for k in range(21)]
    torch.testing.assert_close(seen, expected)


def test_the_schedule_state_holds_no_clock_and_loads_weights_only():
    clock = FakeClock()
    scheduler = PolyLR(optimizer(), budget=Budget(100, 10.0, clock))
    rates(scheduler, 3, lambda: clock.advance(1.0))
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert "budget" not in state and state["last_epoch"] == 3


@pytest.mark.parametrize("scheduler", ["poly"])  # cosine: the unit tests above
def test_a_training_cut_by_max_time_ends_at_the_final_learning_rate(train_config, monkeypatch, scheduler):
    """A real fit with trainer.max_time: Lightning's Timer reads a fake clock that advances 1 s per batch, so the
    run stops after 6 of its 200 allowed steps; the schedule must have reached its end by then."""
    import lightning.pytorch.callbacks.timer as timer_module

    clock = FakeClock()

    class FakeTime:
        monotonic = staticmethod(clock)

    monkeypatch.setattr(timer_module, "time", FakeTime)
    seen = []

    class Tick(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])
            clock.advance(1.0)

    cfg = train_config(f"scheduler={scheduler}", "data.num_train=8", "data.batch_size=4")
    data = instantiate(cfg.data)
    module = build_module(cfg.model, data)
    trainer = L.Trainer(
        max_epochs=100,
        max_time={"seconds": 6},
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[Tick()],
    )
    trainer.fit(module, datamodule=data)
    final = trainer.optimizers[0].param_groups[0]["lr"]
    assert trainer.global_step == 6
    assert final == pytest.approx(0.0, abs=1e-12)  # poly ends at 0, cosine at eta_min = 0
    assert seen == sorted(seen, reverse=True) and seen[0] == cfg.optimizer.lr
    assert seen[3] < 0.75 * cfg.optimizer.lr  # half-way through the time, well below the start
