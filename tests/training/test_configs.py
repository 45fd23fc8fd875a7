"""The Hydra configs compose and instantiate into what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from upseg import SegmentationModule
from upseg.models import MODELS
from upseg.upsample import UPSAMPLERS, DirectConvTranspose2d
from upseg.upsample.pixelshuffle import PixelShuffleUpsampler
from upseg.upsample.resize import BilinearUpsampler, NearestUpsampler

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
UPSAMPLER_CLASS = {
    "transpose": nn.ConvTranspose2d,
    "direct": DirectConvTranspose2d,
    "bilinear": BilinearUpsampler,
    "nearest": NearestUpsampler,
    "pixelshuffle": PixelShuffleUpsampler,
}


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def test_decoder_group_mirrors_the_upsampler_registry():
    assert options("decoder") == sorted(UPSAMPLERS)
    networks = {OmegaConf.load(CONFIGS / "model" / f"{name}.yaml").get("network") for name in options("model")}
    assert networks - {None} == set(MODELS)


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("decoder", options("decoder"))
def test_instantiating_cfg_model_gives_the_lightning_module_with_that_decoder(train_config, model, decoder):
    cfg = train_config(f"model={model}", f"decoder={decoder}", fast=False)
    module = instantiate(cfg.model)
    assert isinstance(module, SegmentationModule)
    upsamplers = [m for m in module.net.modules() if isinstance(m, UPSAMPLER_CLASS[decoder])]
    others = [
        m for name, cls in UPSAMPLER_CLASS.items() if name != decoder for m in module.net.modules() if type(m) is cls
    ]
    assert upsamplers and not others
    assert module.hparams.decoder["name"] == decoder


def test_fcn_starts_transposed_upsamplers_bilinear(train_config):
    module = instantiate(train_config("model=fcn", "decoder=direct", fast=False).model)
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
    module, data = instantiate(cfg.model), instantiate(cfg.data)
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
