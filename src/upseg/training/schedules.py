"""Learning-rate schedules that follow the training budget: ``scheduler=poly`` and ``scheduler=cosine``.

A run ends at whichever limit it reaches first: ``max_steps`` / ``max_epochs`` (``T`` optimizer steps) or
``trainer.max_time`` (``D`` seconds, Lightning's :class:`~lightning.pytorch.callbacks.Timer`). The schedule's
progress after ``t`` steps and ``s`` seconds of fitting (training and validation, as the Timer counts them, resumed
runs included) is the fraction of the budget spent,

    p = min(1, max(t / T, s / D))

(a missing limit leaves its term out), so a run cut by time ends annealed just like one cut by steps: the time term
is the step count that the measured time per step predicts, ``t / (t + remaining · t / s)``. With warm-up ``w`` (a
fraction of the budget) the factor on each base learning rate is

    f(p) = (p / w) · g(0)               for p < w,
    f(p) = g((p − w) / (1 − w))         otherwise,

with ``g(q) = (1 − q)^power`` (poly) or ``g(q) = η + (1 − η)(1 + cos πq) / 2`` (cosine, ``η = eta_min / lr``).
Without ``max_time`` and warm-up, the two are ``torch.optim.lr_scheduler.PolynomialLR`` and ``CosineAnnealingLR``.
Progress is read from a :class:`Budget` whose clock is injected, so that it is testable with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from upseg.errors import ConfigError


@dataclass
class Budget:
    """What a run may spend: ``steps`` scheduler steps (None: no limit) and ``seconds`` of fitting read from
    ``elapsed()`` (None: no time limit)."""

    steps: float | None = None
    seconds: float | None = None
    elapsed: Callable[[], float] | None = None

    def progress(self, step: int) -> float:
        """The fraction of the budget spent after ``step`` steps, in [0, 1]."""
        spent = [0.0]
        if self.steps is not None and math.isfinite(self.steps) and self.steps > 0:
            spent.append(step / self.steps)
        if self.seconds and self.elapsed is not None:
            spent.append(self.elapsed() / self.seconds)
        return min(1.0, max(spent))

    @classmethod
    def of_trainer(cls, trainer: object, steps: float | None) -> Budget:
        """The budget of a Lightning trainer: ``steps`` (its estimated stepping batches, or epochs) and the time
        limit and clock of its ``max_time`` Timer, if it has one."""
        from lightning.pytorch.callbacks import Timer

        timer = next((callback for callback in getattr(trainer, "callbacks", []) if isinstance(callback, Timer)), None)
        if timer is None or timer.time_remaining() is None:
            return cls(steps)
        seconds = timer.time_elapsed() + timer.time_remaining()  # the duration, whatever its config form
        return cls(steps, seconds, timer.time_elapsed)


class BudgetLR(LRScheduler):
    """Base of the budget-following schedules: ``lr = base_lr · factor(progress)`` (see the module docstring)."""

    def __init__(
        self, optimizer: Optimizer, length: float | None, warmup: float, budget: Budget | None, last_epoch: int
    ) -> None:
        if not 0 <= warmup < 1:
            raise ConfigError(f"scheduler.warmup must be a fraction of the run in [0, 1), e.g. 0.05, got {warmup}")
        self.warmup = warmup
        self.budget = budget if budget is not None else Budget(length)
        super().__init__(optimizer, last_epoch)

    def shape(self, q: float, base_lr: float) -> float:
        """``g(q)``: the factor on ``base_lr`` after the warm-up, at ``q`` ∈ [0, 1] of the rest of the run."""
        raise NotImplementedError

    def factor(self, progress: float, base_lr: float) -> float:
        if progress < self.warmup:
            return progress / self.warmup * self.shape(0.0, base_lr)
        return self.shape((progress - self.warmup) / (1 - self.warmup), base_lr)

    def get_lr(self) -> list[float]:
        progress = self.budget.progress(self.last_epoch)
        return [base_lr * self.factor(progress, base_lr) for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        # The budget holds the trainer's clock; a resumed run gets its own (with the time already spent).
        return {key: value for key, value in super().state_dict().items() if key != "budget"}


class PolyLR(BudgetLR):
    """``(1 − q)^power`` over the budget (``total_iters`` steps, filled in from the trainer, and ``max_time``)."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: float | None = None,
        power: float = 0.9,
        warmup: float = 0.0,
        budget: Budget | None = None,
        last_epoch: int = -1,
    ) -> None:
        if not power >= 0:
            raise ConfigError(f"scheduler.power must be 0 or more (1: linear decay), got {power}")
        self.power = power
        super().__init__(optimizer, total_iters, warmup, budget, last_epoch)

    def shape(self, q: float, base_lr: float) -> float:
        return (1 - q) ** self.power


class CosineLR(BudgetLR):
    """Cosine from the base rate to ``eta_min`` over the budget (``T_max`` steps, filled in, and ``max_time``)."""

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: float | None = None,  # the name torch's CosineAnnealingLR gives it
        eta_min: float = 0.0,
        warmup: float = 0.0,
        budget: Budget | None = None,
        last_epoch: int = -1,
    ) -> None:
        if not eta_min >= 0:
            raise ConfigError(f"scheduler.eta_min must be 0 or more (the final learning rate), got {eta_min}")
        self.eta_min = eta_min
        super().__init__(optimizer, T_max, warmup, budget, last_epoch)

    def shape(self, q: float, base_lr: float) -> float:
        floor = self.eta_min / base_lr if base_lr else 0.0
        return floor + (1 - floor) * (1 + math.cos(math.pi * q)) / 2
