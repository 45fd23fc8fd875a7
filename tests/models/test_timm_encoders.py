"""timm encoders (``model.net.encoder=timm:<name>``, the extra ``[timm]``) with random weights, on small models of
four families: their ``feature_info`` gives the U-Net and the pyramid head their widths and strides, both give
logits of the input size, and a name timm does not know, a model without a pyramid, a missing timm and weights that
cannot be downloaded are each one error saying what to do."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from upseg.errors import ConfigError
from upseg.models import build_network

timm = pytest.importorskip("timm", reason='needs pip install -e ".[timm]"')

# A ResNet, a ConvNeXt, a MobileNet and a transformer with a 4-level pyramid (PVT-v2), each a few M parameters.
MODELS = ["resnet10t", "convnext_atto", "mobilenetv3_small_050", "pvt_v2_b0"]


@pytest.mark.parametrize("name", MODELS)
def test_the_unet_and_the_pyramid_head_take_widths_and_strides_from_feature_info(name):
    with torch.device("meta"):  # timm's own account of the model's stages, without allocating it
        info = timm.create_model(name, features_only=True, pretrained=False).feature_info
    expected = {stride.bit_length() - 1: width for stride, width in zip(info.reduction(), info.channels(), strict=True)}
    torch.manual_seed(0)
    unet = build_network("unet", 3, {"name": "bilinear"}, encoder=f"timm:{name}", depth=4).eval()
    fpn = build_network("fpn", 3, {"name": "bilinear"}, encoder=f"timm:{name}", depth=5, channels=8).eval()
    assert unet.encoder.channels == [expected.get(level, 0) for level in range(5)]
    assert fpn.encoder.channels == [expected.get(level, 0) for level in range(6)]
    with torch.no_grad():
        features = unet.encoder(torch.randn(1, 3, 32, 32))
        assert [None if f is None else (f.shape[1], 32 // f.shape[-1]) for f in features] == [
            (expected[level], 2**level) if level in expected else None for level in range(5)
        ]
        for net in (unet, fpn):
            assert net(torch.randn(1, 3, 37, 21)).shape == (1, 3, 37, 21)


def test_only_the_stages_down_to_the_unets_depth_are_built():
    shallow = build_network("unet", 2, {"name": "bilinear"}, encoder="timm:resnet10t", depth=3)
    deep = build_network("unet", 2, {"name": "bilinear"}, encoder="timm:resnet10t", depth=5)
    assert shallow.encoder.channels == [0, 64, 64, 128]
    assert sum(p.numel() for p in shallow.encoder.parameters()) < sum(p.numel() for p in deep.encoder.parameters())


@pytest.mark.parametrize(
    "encoder,message",
    [
        ("timm:resnet_nonexistent", r"timm has no model 'resnet_nonexistent'; list valid names with python -c"),
        ("timm:vit_tiny_patch16_224", r"has features at strides 16, 16, 16, not at stride 4, 8, .*list valid names"),
    ],
)
def test_a_name_timm_does_not_know_or_without_a_pyramid_says_how_to_find_valid_names(encoder, message):
    with pytest.raises(
        ConfigError, match=rf"^model.net.encoder={encoder}: {message}|^model.net.encoder={encoder} {message}"
    ):
        build_network("unet", 2, {"name": "bilinear"}, encoder=encoder, depth=4)


def test_a_missing_timm_names_the_extra(monkeypatch):
    original = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else original(name, *a))
    with pytest.raises(
        ConfigError,
        match=r"^model.net.encoder=timm:resnet10t needs timm, which is not installed; "
        r'install it with: pip install -e "\.\[timm\]"$',
    ):
        build_network("fpn", 2, {"name": "bilinear"}, encoder="timm:resnet10t")


def test_pretrained_weights_that_cannot_be_downloaded_are_one_line(monkeypatch, tmp_path):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as without internet, and fast
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(ConfigError) as error:
        build_network("unet", 2, {"name": "bilinear"}, encoder="timm:resnet10t", encoder_weights="pretrained")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("model.net.encoder_weights=pretrained: timm could not fetch the weights of resnet10t (")
    assert message.endswith("or train from random weights with model.net.encoder_weights=null")
    with pytest.raises(ConfigError, match=r"it takes null \(random initialisation\) or 'pretrained'"):
        build_network("unet", 2, {"name": "bilinear"}, encoder="timm:resnet10t", encoder_weights="DEFAULT")
