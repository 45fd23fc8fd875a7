"""The Hydra configs compose and instantiate into what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from upseg import SegmentationModule
from upseg.models import NETWORKS
from upseg.training.build import build_module
from upseg.upsample import UPSAMPLERS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def test_decoder_group_mirrors_the_upsampler_registry():
    assert options("decoder") == sorted(UPSAMPLERS)
    for name in options("decoder"):
        assert OmegaConf.load(CONFIGS / "decoder" / f"{name}.yaml").name == name


def test_the_comparison_preset_sweeps_every_registered_upsampler(compose_configs, tmp_path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=compare_upsamplers"], return_hydra_config=True)
    sweep = cfg.hydra.sweeper.params
    (override,) = OverridesParser.create().parse_overrides([f"decoder={sweep.decoder}"])
    swept = override.value().filter(options("decoder")) if override.is_sweep_override() else None
    assert swept == sorted(UPSAMPLERS)
    assert str(sweep.seed) == "0,1,2"
    networks = {
        OmegaConf.select(OmegaConf.load(CONFIGS / "model" / f"{name}.yaml"), "net.name") for name in options("model")
    }
    assert networks - {None} == set(NETWORKS)


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("decoder", options("decoder"))
def test_instantiating_cfg_model_gives_the_lightning_module_with_that_decoder(train_config, model, decoder):
    # FCN upsamples the class scores (3 for the default data, pets): DySample's groups must divide them.
    groups = ["decoder.options.groups=1"] if (model, decoder) == ("fcn", "dysample") else []
    cfg = train_config(f"model={model}", f"decoder={decoder}", *groups, fast=False)
    module = build_module(cfg.model, instantiate(cfg.data))
    assert isinstance(module, SegmentationModule)
    kinds = {type(m) for m in module.net.modules()} & set(UPSAMPLERS.values())
    assert kinds == {UPSAMPLERS[decoder]}
    assert module.hparams.decoder["name"] == decoder


def test_fcn_starts_transposed_upsamplers_bilinear(train_config):
    cfg = train_config("model=fcn", "decoder=direct", fast=False)
    module = build_module(cfg.model, instantiate(cfg.data))
    layer = module.net.up_final.conv
    x = torch.randn(1, layer.in_channels, 6, 6)
    # A bilinear transposed conv maps a constant map to the same constant away from the borders.
    y = layer(torch.ones_like(x))
    torch.testing.assert_close(y[..., 8:-8, 8:-8], torch.ones_like(y[..., 8:-8, 8:-8]))


@pytest.mark.parametrize("trainer", options("trainer"))
@pytest.mark.parametrize("logger", ["csv", "tensorboard", "many"])
def test_trainer_and_logger_configs_compose(train_config, trainer, logger):
    cfg = train_config(f"trainer={trainer}", f"logger={logger}")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    for node in cfg.logger.values():
        assert "_target_" in node
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("logger", ["wandb", "mlflow"])
def test_optional_logger_configs_name_real_lightning_loggers(train_config, logger):
    import lightning.pytorch.loggers as loggers

    cfg = train_config(f"logger={logger}")
    (node,) = cfg.logger.values()
    assert hasattr(loggers, node._target_.rsplit(".", 1)[-1])
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("scheduler", options("scheduler"))
@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_optimizer_and_scheduler_configs_drive_the_learning_rate(train_config, optimizer, scheduler):
    from lightning.pytorch import Trainer

    cfg = train_config(f"optimizer={optimizer}", f"scheduler={scheduler}", "data.num_train=16")
    data = instantiate(cfg.data)
    module = build_module(cfg.model, data)
    trainer = Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=data)
    (opt,) = trainer.optimizers
    assert type(opt).__name__ == {"adamw": "AdamW", "sgd": "SGD"}[optimizer]
    final_lr, initial_lr = opt.param_groups[0]["lr"], cfg.optimizer.lr
    if scheduler == "none":
        assert final_lr == initial_lr
    else:  # both schedules run over the whole training (8 steps) and end near zero
        assert trainer.global_step == 8 and final_lr < 0.25 * initial_lr


@pytest.mark.parametrize("experiment", ["why_drive", "why_isbi"])
def test_the_why_presets_sweep_three_architectures_on_one_encoder_by_every_upsampler_but_direct(experiment):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from upseg.models import build_network

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
        sweep = cfg.hydra.sweeper.params
        assert list(sweep) == ["seed", "model", "decoder"]  # seeds slowest: a sweep cut short has every cell
        assert str(sweep.seed) == "0,1,2,3,4" and str(sweep.model) == "unet,unet_noskip,fpn"
        (override,) = OverridesParser.create().parse_overrides([f"decoder={sweep.decoder}"])
        assert override.value().filter(options("decoder")) == sorted(set(UPSAMPLERS) - {"direct"})
        assert cfg.model.boundary_width in (2, 3) and cfg.model.boundary_dilation_ratio is None
        encoders = set()
        for model in str(sweep.model).split(","):
            net_cfg = compose("train", overrides=[f"experiment={experiment}", f"model={model}"]).model.net
            net = build_network(num_classes=2, decoder={"name": "transpose"}, **OmegaConf.to_container(net_cfg))
            encoders.add(tuple((name, tuple(p.shape)) for name, p in net.encoder.named_parameters()))
    GlobalHydra.instance().clear()
    assert len(encoders) == 1  # the same encoder: only the decoder's access to its features differs
