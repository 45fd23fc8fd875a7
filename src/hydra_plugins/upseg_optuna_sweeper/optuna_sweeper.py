"""``hydra/sweeper=upseg_optuna``: each trial of a multirun is one set of overrides that Optuna suggests.

Why our own: hydra-optuna-sweeper (1.2.0 and 1.3.0, the newest) requires ``optuna>=2.10,<3``. Optuna 2.10.1 imports
with SQLAlchemy 2 only with deprecation warnings and fails on any persistent storage (``storage=sqlite:///…`` stops
with an ``AssertionError`` in its schema-version check), and pinning it would hold back every other user of Optuna in
the same environment. This sweeper works with Optuna 3 and newer and keeps hydra-optuna-sweeper's keys
(``sampler``, ``direction``, ``storage``, ``study_name``, ``n_trials``, ``n_jobs``, ``max_failure_rate``,
``params``), its search-space syntax (``choice(…)``, ``range(…)``, ``interval(…)``, ``tag(log, interval(…))``, and
``glob(…)`` over a config group's options, so that a new decoder is searched without editing a list) and
its result file, ``<sweep dir>/optimization_results.yaml``. Optuna is imported only when a search runs, so that
Hydra's plugin scan works without the ``[search]`` extra.

A trial whose run fails (the task returns ``None``, as ``scripts/train.py`` does after recording ``error.txt``) is
told to Optuna as failed and the search goes on, unless more than ``max_failure_rate`` of the trials so far failed.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.upseg_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    direction: str = "minimize"  # or maximize
    storage: Any = None  # e.g. sqlite:///optuna.db: the study outlives the sweep and resumes under its study_name
    study_name: str | None = None
    n_trials: int = 20
    n_jobs: int = 1  # trials launched at once (in parallel with a parallel launcher)
    max_failure_rate: float = 0.0  # stop asking for trials once more than this share of them failed
    params: dict[str, str] | None = None  # key: a sweep such as choice(a, b) or tag(log, interval(1e-4, 1e-2))


ConfigStore.instance().store(group="hydra/sweeper", name="upseg_optuna", node=OptunaSweeperConf, provider="upseg")


def distribution(override: Override) -> Any:
    """The Optuna distribution of a sweep override (the same mapping as hydra-optuna-sweeper's)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        assert isinstance(value, ChoiceSweep | RangeSweep | Glob)
        # a glob lists the matching options of its config group (through the parser's config loader)
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
            # range's stop is exclusive, Optuna's high inclusive
            high = value.start + math.floor((value.stop - value.start) / value.step - 1e-9) * value.step
            return FloatDistribution(value.start, high, step=value.step)
        return IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line} is not a sweep Optuna can sample from")


def search_space(arguments: list[str], config_loader: ConfigLoader | None = None) -> tuple[dict[str, Any], list[str]]:
    """``({key: distribution}, [the other overrides, as given])`` of sweep and fixed overrides; ``config_loader``
    lists a config group's options for a ``glob(…)``.

    A later override of a key replaces an earlier one, sweep or not: ``decoder=carafe`` on the command line takes
    the decoder out of the config's search space.
    """
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create(config_loader).parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = distribution(override)
            fixed.pop(key, None)
        else:
            fixed[key] = override.input_line  # as given: a deletion (~key) has no value to rebuild it from
            space.pop(key, None)
    return space, list(fixed.values())


def trial_value(result: JobReturn) -> float | None:
    """The run's objective, or None when it failed or returned nothing usable."""
    if result.status != JobStatus.COMPLETED:
        return None
    try:
        value = float(result.return_value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


class OptunaSweeper(Sweeper):
    """Asks Optuna for ``n_jobs`` trials at a time, launches them, tells it their results, ``n_trials`` in all."""

    def __init__(
        self,
        sampler: Any,
        direction: str,
        storage: Any,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: DictConfig | None,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate must be between 0 and 1, got {max_failure_rate}")
        self.sampler = sampler
        self.direction = str(direction)
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = max(1, n_jobs)
        self.max_failure_rate = max_failure_rate
        self.params = params or {}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context  # validate_batch_is_legal composes each trial's config with its loader
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> dict[str, Any]:
        import optuna

        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        space, fixed = search_space(
            [f"{key}={value}" for key, value in self.params.items()] + list(arguments), self.hydra_context.config_loader
        )
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            direction=self.direction,
            load_if_exists=True,
        )
        log.info(f"Optuna study {study.study_name}: {self.n_trials} trials, {self.direction}, over {list(space)}")
        job_number, failed = 0, 0
        while job_number < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - job_number))]
            batch = [tuple(fixed + [f"{key}={value}" for key, value in trial.params.items()]) for trial in trials]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=job_number)
            for index, (trial, result) in enumerate(zip(trials, results, strict=True)):
                # A study kept in storage numbers its trials on from an earlier sweep: remember the run folder.
                trial.set_user_attr("job", job_number + index)
                value = trial_value(result)
                if value is None:
                    failed += 1
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)
            job_number += len(results)
            if failed / job_number > self.max_failure_rate:
                log.error(
                    f"{failed} of {job_number} trials failed (hydra.sweeper.max_failure_rate={self.max_failure_rate}); "
                    "the search stops"
                )
                break
        return self.write_results(study)

    def write_results(self, study: Any) -> dict[str, Any]:
        """Print the best trial in one line and write it to ``<sweep dir>/optimization_results.yaml``."""
        assert self.config is not None
        completed = [trial for trial in study.trials if trial.value is not None]
        results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "direction": self.direction}
        if completed:
            best = study.best_trial
            job = best.user_attrs.get("job")
            run_dir = f"{self.config.hydra.sweep.dir}/{job}" if job is not None else "an earlier sweep"
            results.update(best_params=dict(best.params), best_value=best.value, best_trial=best.number, best_job=job)
            print(
                f"best trial {best.number} ({run_dir}): objective {best.value:.4f} with "
                + " ".join(f"{key}={value}" for key, value in best.params.items()),
                flush=True,
            )
        else:
            results.update(best_params=None, best_value=None, best_trial=None, best_job=None)
            log.error("no trial completed")
        OmegaConf.save(OmegaConf.create(results), f"{self.config.hydra.sweep.dir}/optimization_results.yaml")
        return results
