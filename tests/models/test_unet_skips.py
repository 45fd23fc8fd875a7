"""The U-Net's skips as an option: which stages concatenate an encoder feature, and what a guided upsampler reads
where a stage has none — the encoder feature (FADE's design) or the decoder's own (the fair alternative). The
information flow is checked, not only the shapes: with no skips and the decoder's guide, the logits do not change
when every encoder feature but the bottleneck is replaced by noise."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.networks import fade_guides
from upseg.errors import ConfigError
from upseg.models import build_network

OPTIONS = {"depth": 3, "base_width": 4}


def with_noisy_shallow_features(net: torch.nn.Module) -> None:
    """Make the encoder return noise in place of every level but the deepest (the bottleneck)."""

    def replace(module, args, features):
        return [None if f is None else torch.randn_like(f) for f in features[:-1]] + [features[-1]]

    net.encoder.register_forward_hook(replace)


@pytest.mark.parametrize(
    "skips,guide,sees_shallow_features",
    [("all", "encoder", True), ("none", "encoder", True), ("none", "decoder", False), ([0], "decoder", True)],
)
def test_the_logits_depend_on_shallow_encoder_features_only_through_skips_and_the_encoder_guide(
    skips, guide, sees_shallow_features
):
    torch.manual_seed(0)
    net = build_network("unet", 3, {"name": "fade"}, skips=skips, guide=guide, **OPTIONS).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        clean = net(x)
        with_noisy_shallow_features(net)
        noisy = net(x)
    assert (not torch.allclose(clean, noisy)) == sees_shallow_features


@pytest.mark.parametrize("decoder", ["bilinear", "carafe"])
def test_without_skips_an_unguided_decoder_ignores_the_shallow_encoder_features(decoder):
    torch.manual_seed(0)
    net = build_network("unet", 3, {"name": decoder}, skips="none", **OPTIONS).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        clean = net(x)
        with_noisy_shallow_features(net)
        torch.testing.assert_close(net(x), clean)


def test_a_list_of_levels_keeps_only_their_skips():
    net = build_network("unet", 2, {"name": "bilinear"}, skips=[0, 2], **OPTIONS)
    # Stage i's block takes its upsampled width, plus the level-i encoder width where the skip is kept.
    widths = net.encoder.channels
    assert [stage.conv[0][0].in_channels for stage in net.decoder] == [4 + widths[0], 8, 16 + widths[2]]


@pytest.mark.parametrize(
    "skips,guide,expected",
    [
        # (guide channels, guide size) per fade, deepest first, for a 32×32 input; encoder widths 4, 8, 16, 32
        ("none", "encoder", [(16, 8), (8, 16), (4, 32)]),  # the encoder features at the output stride anyway
        ("none", "decoder", [(32, 8), (16, 16), (8, 32)]),  # the stage's own input, repeated ×2
        ([1], "decoder", [(32, 8), (8, 16), (8, 32)]),  # the skip where there is one
    ],
)
def test_the_guide_where_a_stage_has_no_skip(skips, guide, expected):
    net = build_network("unet", 2, {"name": "fade"}, skips=skips, guide=guide, **OPTIONS)
    assert fade_guides(net, 32) == expected


def test_the_decoder_guide_is_the_stage_input_repeated_to_the_output_resolution():
    net = build_network("unet", 2, {"name": "fade"}, skips="none", guide="decoder", **OPTIONS).eval()
    captured = {}
    net.decoder[2].up.register_forward_hook(lambda m, args, out: captured.update(x=args[0], guide=args[1]))
    with torch.no_grad():
        net(torch.randn(1, 3, 32, 32))
    torch.testing.assert_close(captured["guide"], captured["x"].repeat_interleave(2, -1).repeat_interleave(2, -2))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"skips": [3]}, r"model.net.skips=\[3\] is not valid: .*each one of 0, 1, 2 \(level i is at stride 2\^i"),
        ({"skips": "some"}, r"model.net.skips='some' is not valid: it takes 'all', 'none' or a list"),
        ({"skips": [1, 1]}, r"model.net.skips=\[1, 1\] is not valid"),
        ({"skips": [0], "encoder": "resnet18"}, r"model.net.skips=\[0\] is not valid: .*each one of 1, 2"),
        ({"guide": "image"}, r"model.net.guide must be one of encoder, decoder"),
    ],
)
def test_bad_skips_and_guides_are_one_error_naming_the_valid_values(options, message):
    with pytest.raises(ConfigError, match=message):
        build_network("unet", 2, {"name": "transpose"}, **{**OPTIONS, **options})
