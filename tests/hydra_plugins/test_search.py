"""``hparams_search=optuna``: a seeded Optuna search over learning rate, weight decay and decoder, maximising val/mIoU;
the best trial is printed and written to the sweep folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

SMALL_MODEL = ["model.net.depth=2", "model.net.base_width=8"]
SEARCHED = ("optimizer.lr", "optimizer.weight_decay", "decoder")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def config_loader():
    """Hydra's loader of our configs, which lists a group's options for a ``glob(…)`` in the search space."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIGS)))


@pytest.mark.slow
def test_a_seeded_search_of_three_trials_finds_and_writes_the_best(scripts, tmp_path):
    optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[search]"')
    from hydra_plugins.upseg_optuna_sweeper.optuna_sweeper import search_space

    sweep = tmp_path / "sweep"
    result = scripts.run(
        "train.py",
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        *scripts.TINY,
        *SMALL_MODEL,
        *scripts.QUIET,
        f"hydra.sweep.dir={sweep}",
        root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    trials = []
    for job in range(3):
        overrides = OmegaConf.load(sweep / str(job) / ".hydra" / "overrides.yaml")
        params = dict(item.split("=", 1) for item in overrides if item.split("=", 1)[0] in SEARCHED)
        value = json.loads((sweep / str(job) / "metrics.json").read_text())["val/mIoU"]
        trials.append((params, value))
    assert all(set(params) == set(SEARCHED) for params, _ in trials)

    best_params, best_value = max(trials, key=lambda trial: trial[1])
    results = OmegaConf.to_container(OmegaConf.load(sweep / "optimization_results.yaml"))
    assert results["best_value"] == pytest.approx(best_value)
    assert {key: str(value) for key, value in results["best_params"].items()} == best_params
    best_job = results["best_job"]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("best trial")]
    assert line.startswith(f"best trial {results['best_trial']} ({sweep / str(best_job)}): objective {best_value:.4f}")
    assert f"decoder={best_params['decoder']}" in line

    # Seeded: a fresh study with the config's sampler and search space suggests the same three trials.
    config = OmegaConf.load(sweep / "0" / ".hydra" / "hydra.yaml").hydra.sweeper
    space, _ = search_space([f"{key}={value}" for key, value in config.params.items()], config_loader())
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(**_sampler_args(config)))
    suggested = [{key: str(value) for key, value in study.ask(space).params.items()} for _ in range(3)]
    assert suggested == [params for params, _ in trials]


def _sampler_args(config) -> dict:
    return {key: value for key, value in config.sampler.items() if key != "_target_"}


def test_the_search_config_composes_with_the_sweeper_and_its_keys():
    pytest.importorskip("optuna", reason='needs pip install -e ".[search]"')
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    configs = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.upseg_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "maximize" and sweeper.sampler.seed is not None
    assert set(sweeper.params) == set(SEARCHED)
    from hydra_plugins.upseg_optuna_sweeper.optuna_sweeper import search_space
    from upseg.upsample import UPSAMPLERS

    space, _ = search_space([f"decoder={sweeper.params.decoder}"], config_loader())
    # Every registered upsampler but direct (the same function as transpose), with no list to keep up to date.
    assert set(space["decoder"].choices) == set(UPSAMPLERS) - {"direct"}


def test_an_override_on_the_command_line_replaces_the_configs_search_of_that_key():
    pytest.importorskip("optuna", reason='needs pip install -e ".[search]"')
    from hydra_plugins.upseg_optuna_sweeper.optuna_sweeper import search_space

    config = ["optimizer.lr=tag(log, interval(0.0003, 0.03))", "decoder=choice(transpose, carafe)"]
    space, fixed = search_space([*config, "decoder=carafe", "decoder.options.up_kernel=choice(3,5,7)", "~x.y"])
    assert set(space) == {"optimizer.lr", "decoder.options.up_kernel"} and space["optimizer.lr"].log
    assert fixed == ["decoder=carafe", "~x.y"]
    space, fixed = search_space(["decoder=transpose", "decoder=choice(transpose,carafe)"])
    assert set(space) == {"decoder"} and fixed == []
