"""The feature-pyramid head (SegFormer's all-MLP decoder, ×2 steps): every level reaches stride 4 through its own
chain of ×2 upsamplers, guided ones read the embedded level at their output stride, the final ×4 is bilinear or the
chosen upsampler, and with its resize-convolutions made plain bilinear ×2 steps it is the head of its definition
(checked against a forward written from it)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.networks import fade_guides
from upseg.errors import ConfigError
from upseg.models import build_network
from upseg.upsample import UPSAMPLERS

OPTIONS = {"depth": 5, "base_width": 4, "channels": 8}


def test_every_level_is_brought_to_stride_4_by_its_own_x2_steps():
    net = build_network("fpn", 3, {"name": "carafe"}, **OPTIONS)
    # Levels at strides 8, 16, 32 pass through 1, 2 and 3 upsamplers: 6 for the 4-level pyramid.
    assert [len(steps) for steps in net.up] == [1, 2, 3]
    assert all(up.scale_factor == 2 for steps in net.up for up in steps)
    assert net.up_final is None and net.checkerboard_period == 8


def test_guided_upsamplers_read_the_embedded_level_at_their_output_stride():
    net = build_network("fpn", 3, {"name": "fade"}, final_upsample="decoder", **OPTIONS)
    # level 8 → 4; level 16 → 8 → 4; level 32 → 16 → 8 → 4 (embedded, 8 channels); then the image for the final ×4
    assert fade_guides(net, 64) == [(8, 16), (8, 8), (8, 16), (8, 4), (8, 8), (8, 16), (3, 64)]
    assert net.checkerboard_period == 4


@pytest.mark.parametrize("decoder", sorted(UPSAMPLERS))
def test_the_final_upsampling_by_the_decoder_gives_logits_of_the_input_size(decoder):
    net = build_network("fpn", 4, {"name": decoder}, final_upsample="decoder", depth=3, base_width=4, channels=8)
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 37, 21)).shape == (1, 4, 37, 21)


def pyramid_reference(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The head written from its definition, with plain bilinear ×2 steps: embed every level, bring level ``l`` to
    stride 4 by ``l − 2`` bilinear ×2 interpolations, concatenate (stride 4 first), fuse, classify, ×4 bilinear —
    with this network's encoder, embeddings, fusion and classifier."""
    features = net.encoder(x)
    levels = range(2, net.depth + 1)
    embedded = [embed(features[level]) for embed, level in zip(net.embed, levels, strict=True)]
    brought = []
    for level, e in zip(levels, embedded, strict=True):
        for _ in range(level - 2):
            e = F.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False)
        brought.append(e)
    scores = net.classify(net.fuse(torch.cat(brought, 1)))
    return F.interpolate(scores, scale_factor=4, mode="bilinear", align_corners=False)


def test_with_identity_resize_convolutions_it_is_the_head_of_its_definition():
    torch.manual_seed(0)
    decoder = {"name": "bilinear", "options": {"kernel_size": 1}}
    net = build_network("fpn", 3, decoder, depth=5, base_width=4, channels=8).double().eval()
    for steps in net.up:
        for up in steps:  # the resize-convolution's 1×1 convolution made the identity: a plain bilinear ×2
            torch.nn.init.zeros_(up.conv.bias)
            up.conv.weight.data.copy_(torch.eye(8, dtype=torch.float64)[:, :, None, None])
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), pyramid_reference(net, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"depth": 2}, r"model.net.depth must be an int of at least 3"),
        ({"channels": 0}, r"model.net.channels must be a positive int"),
        ({"final_upsample": "nearest"}, r"model.net.final_upsample must be one of bilinear, decoder"),
        ({"encoder": "resnet18", "depth": 6}, r"model.net.depth must be between 1 and 5"),
    ],
)
def test_bad_pyramid_options_are_one_error_naming_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        build_network("fpn", 2, {"name": "transpose"}, **{**OPTIONS, **options})
