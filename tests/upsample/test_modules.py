"""DirectConvTranspose2d as a drop-in nn.ConvTranspose2d, and the builder and options of the upsampler family (what
every upsampler must do alike is in test_family.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upseg.upsample import UPSAMPLERS, DirectConvTranspose2d, build_upsampler
from upseg.upsample.ops import polyphase
from upseg.upsample.ops.direct_conv import IMPLS
from upseg.upsample.registry import upsampler_options

LAYER_ARGS = [
    {"in_channels": 4, "out_channels": 6, "kernel_size": 3},
    {
        "in_channels": 4,
        "out_channels": 6,
        "kernel_size": (2, 4),
        "stride": (2, 3),
        "padding": (0, 1),
        "output_padding": (1, 2),
        "groups": 2,
    },
    {"in_channels": 3, "out_channels": 3, "kernel_size": 3, "stride": 2, "dilation": 2, "groups": 3, "bias": False},
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kwargs", LAYER_ARGS)
def test_state_dict_round_trips_with_conv_transpose2d(kwargs, impl):
    reference = nn.ConvTranspose2d(**kwargs, dtype=torch.float64)
    direct = DirectConvTranspose2d(**kwargs, dtype=torch.float64, impl=impl)
    assert direct.impl == impl
    assert {k: v.shape for k, v in direct.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    x = torch.randn(2, kwargs["in_channels"], 5, 4, dtype=torch.float64)

    direct.load_state_dict(reference.state_dict())
    torch.testing.assert_close(direct(x), reference(x), rtol=1e-12, atol=1e-12)

    with torch.no_grad():
        for p in direct.parameters():
            p.normal_()
    reference.load_state_dict(direct.state_dict())
    torch.testing.assert_close(reference(x), direct(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs", LAYER_ARGS)
def test_same_seed_gives_same_initial_weights(kwargs):
    torch.manual_seed(3)
    reference = nn.ConvTranspose2d(**kwargs)
    torch.manual_seed(3)
    direct = DirectConvTranspose2d(**kwargs)
    for (name, want), (name_direct, got) in zip(
        reference.state_dict().items(), direct.state_dict().items(), strict=True
    ):
        assert name == name_direct
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_padding_mode_other_than_zeros_is_rejected():
    with pytest.raises(ValueError, match="padding_mode"):
        DirectConvTranspose2d(2, 2, 3, padding_mode="reflect")


@pytest.mark.parametrize("name", ["transpose", "direct"])
@pytest.mark.parametrize("kernel_size", [1, 2, 3, 5, 6])
def test_transpose_kernel_option_keeps_the_size(name, kernel_size):
    upsampler = build_upsampler(name, 2, 2, 2, kernel_size=kernel_size)
    assert upsampler(torch.randn(1, 2, 7, 4)).shape == (1, 2, 14, 8)


def test_builder_rejects_unknown_names_and_options():
    with pytest.raises(ValueError) as info:
        build_upsampler("foo", 4, 4)
    assert str(info.value).endswith("valid names: " + ", ".join(sorted(UPSAMPLERS)))
    with pytest.raises(ValueError, match="no option 'stride'.*valid options: kernel_size, init, bias"):
        build_upsampler("transpose", 4, 4, stride=3)
    with pytest.raises(ValueError, match="scale_factor"):
        build_upsampler("bilinear", 4, 4, scale_factor=1.5)
    with pytest.raises(ValueError, match="init"):
        build_upsampler("pixelshuffle", 4, 4, init="bilinear")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("init", ["default", "bilinear"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_transpose_and_direct_share_state_and_output(init, scale, impl):
    torch.manual_seed(0)
    transpose = build_upsampler("transpose", 6, 4, scale, init=init).double()
    direct = build_upsampler("direct", 6, 4, scale, init=init, impl=impl).double()
    assert direct.conv.impl == impl
    assert direct.state_dict().keys() == transpose.state_dict().keys()
    direct.load_state_dict(transpose.state_dict())
    x = torch.randn(2, 6, 7, 5, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(direct(x), transpose(x), rtol=1e-12, atol=1e-12)
    grad = torch.randn(2, 4, 7 * scale, 5 * scale, dtype=torch.float64)
    for want, got in zip(
        torch.autograd.grad(transpose(x), (x, *transpose.parameters()), grad),
        torch.autograd.grad(direct(x), (x, *direct.parameters()), grad),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    transpose.load_state_dict(direct.state_dict())
    torch.testing.assert_close(transpose(x), direct(x), rtol=1e-12, atol=1e-12)


def test_direct_trains_after_its_first_call_ran_under_inference_mode():
    # Lightning's sanity check runs validation under inference_mode before the first training step; a tensor made
    # there and reused (the sub-pixel tap index is made once) must still be savable for backward.
    polyphase._slot_index.cache_clear()
    layer = build_upsampler("direct", 3, 2, 2, impl="subpixel")
    reference = build_upsampler("transpose", 3, 2, 2)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(1, 3, 4, 4)
    with torch.inference_mode():
        layer(x)
    x.requires_grad_(True)
    weight_grad, input_grad = torch.autograd.grad(layer(x).square().sum(), (layer.conv.weight, x))
    want_weight, want_input = torch.autograd.grad(reference(x).square().sum(), (reference.conv.weight, x))
    torch.testing.assert_close(weight_grad, want_weight)
    torch.testing.assert_close(input_grad, want_input)


def test_direct_makes_its_tap_index_once_per_layout_and_device():
    # A new index tensor per call would copy host to device at every step, and that copy waits for the GPU.
    polyphase._slot_index.cache_clear()
    layer = build_upsampler("direct", 3, 2, 2, impl="subpixel")
    for _ in range(3):
        layer(torch.randn(2, 3, 4, 4))
    info = polyphase._slot_index.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_only_direct_takes_impl():
    assert "impl" in upsampler_options("direct")
    assert "impl" not in upsampler_options("transpose")
    with pytest.raises(ValueError, match="no option 'impl'"):
        build_upsampler("transpose", 4, 4, impl="subpixel")
    assert build_upsampler("direct", 4, 4).conv.impl == "subpixel"  # the default, chosen by docs/benchmarks.md


@pytest.mark.parametrize("name", ["transpose", "direct"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bilinear_init_reproduces_bilinear_upsampling_away_from_borders(name, scale):
    upsampler = build_upsampler(name, 3, 3, scale, init="bilinear").double()
    upsampler.init_bilinear()  # again in float64: 1/3 and 2/3 taps are inexact in float32
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    expected = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    actual = upsampler(x)
    inner = (..., slice(scale, -scale), slice(scale, -scale))
    torch.testing.assert_close(actual[inner], expected[inner], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(actual, expected)  # the zero padding at the borders does differ


def test_bilinear_init_maps_channel_i_to_channel_i_only():
    upsampler = build_upsampler("transpose", 3, 2, 2, init="bilinear")
    x = torch.zeros(1, 3, 4, 4)
    x[:, 2] = 1.0  # a third input channel has no output partner
    assert upsampler(x).abs().max() == 0


def sub_pixel_phases(y, scale):
    return [y[..., i::scale, j::scale] for i in range(scale) for j in range(scale)]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_icnr_output_has_equal_sub_pixel_phases(scale):
    torch.manual_seed(0)
    icnr = build_upsampler("pixelshuffle", 4, 3, scale, init="icnr")
    plain = build_upsampler("pixelshuffle", 4, 3, scale, init="default")
    for x in (torch.ones(1, 4, 6, 5), torch.randn(1, 4, 6, 5)):
        phases = sub_pixel_phases(icnr(x), scale)
        for phase in phases[1:]:
            torch.testing.assert_close(phase, phases[0], rtol=0, atol=0)
    plain_phases = sub_pixel_phases(plain(torch.ones(1, 4, 6, 5)), scale)
    assert not torch.allclose(plain_phases[0], plain_phases[1])  # without ICNR the phases differ: a checkerboard
