"""The networks: any input size in, logits of that size out; `direct` and `transpose` decoders agree."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.networks import fade_guides
from upseg.errors import ConfigError
from upseg.models import build_network
from upseg.upsample import UPSAMPLERS

MODEL_OPTIONS = {
    "unet": {"depth": 3, "base_width": 8},
    "unet-resnet18": {"encoder": "resnet18", "depth": 5},
    "fcn": {"backbone": "resnet18"},
    "fcn-vgg16-16s": {"backbone": "vgg16", "variant": "16s", "head_channels": 32},
    "fcn-resnet18-32s": {"backbone": "resnet18", "variant": "32s"},
}
SIZES = [(97, 131), (33, 17), (1, 1), (64, 64)]


@pytest.mark.parametrize("variant", list(MODEL_OPTIONS))
@pytest.mark.parametrize("decoder", sorted(UPSAMPLERS))
def test_any_input_size_gives_logits_of_that_size(variant, decoder):
    network = variant.split("-")[0]
    net = build_network(network, 4, {"name": decoder, "options": {}}, **MODEL_OPTIONS[variant]).eval()
    with torch.no_grad():
        for height, width in SIZES:
            assert net(torch.randn(2, 3, height, width)).shape == (2, 4, height, width)


@pytest.mark.parametrize("variant", ["unet", "unet-resnet18", "fcn"])
def test_direct_and_transpose_decoders_give_the_same_logits_on_the_same_weights(variant):
    network = variant.split("-")[0]
    torch.manual_seed(0)
    transpose = build_network(network, 4, {"name": "transpose"}, **MODEL_OPTIONS[variant]).double().eval()
    direct = build_network(network, 4, {"name": "direct"}, **MODEL_OPTIONS[variant]).double().eval()
    direct.load_state_dict(transpose.state_dict())
    x = torch.randn(2, 3, 45, 61, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(direct(x), transpose(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "network,options,match",
    [
        ("unet", {"depth": -1}, "model.net.depth"),
        ("unet", {"depth": 0}, "model.net.depth"),
        ("unet", {"base_width": 0}, "model.net.base_width"),
        ("unet", {"encoder": "resnet9"}, "model.net.encoder"),
        ("unet", {"encoder": "resnet18", "depth": 6}, "model.net.depth"),
        ("fcn", {"variant": "4s"}, "model.net.variant"),
        ("fcn", {"backbone": "alexnet"}, "model.net.backbone"),
        ("unet", {"colour": "red"}, "colour"),
    ],
)
def test_bad_model_options_raise_config_errors_naming_the_key(network, options, match):
    with pytest.raises(ConfigError, match=match):
        build_network(network, 3, {"name": "transpose"}, **options)


def test_dysample_groups_must_divide_the_channels_it_samples():
    # FCN upsamples class scores: with 5 classes the default 4 groups cannot work, and the error says what can.
    with pytest.raises(
        ConfigError,
        match=r"^decoder: groups=4 must divide out_channels=5; valid values: 1, 5 \(the ×2 upsampling into stride 16, "
        r"5 → 5 channels, by dysample\)$",
    ):
        build_network("fcn", 5, {"name": "dysample", "options": {"groups": 4}})
    build_network("fcn", 5, {"name": "dysample", "options": {"groups": 5}})


def test_unknown_decoder_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError) as info:
        build_network("unet", 3, {"name": "foo"}, depth=2, base_width=4)
    assert str(info.value).endswith("valid names: " + ", ".join(sorted(UPSAMPLERS)))


@pytest.mark.parametrize(
    "variant,expected",
    [
        # (guide channels, guide size) per upsampler, deepest first, for a 64×64 input
        ("unet", [(16, 32), (8, 64)]),  # the skips of the plain encoder (depth 2, width 8) at strides 2 and 1
        ("unet-resnet18", [(64, 16), (64, 32), (3, 64)]),  # ResNet's stride-4 and -2 features, then the image
        ("fcn", [(256, 4), (128, 8), (3, 64)]),  # pool4, pool3, then the image for the final ×8
    ],
)
def test_guided_upsamplers_get_the_encoder_feature_at_their_output_resolution(variant, expected):
    network = variant.split("-")[0]
    options = {"unet": {"depth": 2, "base_width": 8}, "unet-resnet18": {"encoder": "resnet18", "depth": 3}}
    net = build_network(network, 4, {"name": "fade"}, **options.get(variant, MODEL_OPTIONS[variant]))
    assert fade_guides(net, 64) == expected


def test_the_model_sets_guide_channels_itself():
    with pytest.raises(ConfigError, match="guide_channels is set by the model"):
        build_network("unet", 3, {"name": "fade", "options": {"guide_channels": 8}}, depth=2, base_width=4)


def test_decoder_channels_set_the_widths_of_a_resnet_unet():
    net = build_network("unet", 2, {"name": "bilinear"}, encoder="resnet18", depth=3, decoder_channels=[8, 24, 40])
    widths = {}
    for index, stage in enumerate(net.decoder):
        stage.up.register_forward_hook(lambda module, args, out, index=index: widths.update({index: out.shape[1]}))
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    assert [widths[i] for i in range(3)] == [8, 24, 40] and net.head.in_channels == 8
    with pytest.raises(ConfigError, match="model.net.decoder_channels must be 3 positive ints"):
        build_network("unet", 2, {"name": "bilinear"}, encoder="resnet18", depth=3, decoder_channels=[8, 24])
