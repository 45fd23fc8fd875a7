"""An upsampler per stage (``decoder.stages``, deepest first) in every network that has stages: each stage gets the
upsampler its entry names, at the output stride the docs give, with the options the entry implies; a wrong length,
an unknown name or an option that does not fit one stage is one error naming the key and the valid values."""

from __future__ import annotations

import pytest
import torch

from upseg.errors import ConfigError
from upseg.models import build_network, decoder_label
from upseg.upsample import UPSAMPLERS

VALID = ", ".join(sorted(UPSAMPLERS))
# (network, options, the output stride of each stage, deepest first, for a 64×64 input)
STAGED = [
    ("unet", {"depth": 3, "base_width": 4}, [4, 2, 1]),
    ("fcn", {"head_channels": 8}, [16, 8, 1]),
    ("fpn", {"depth": 5, "base_width": 4, "channels": 8}, [16, 8, 4]),
    ("fpn", {"depth": 4, "base_width": 4, "channels": 8, "final_upsample": "decoder"}, [8, 4, 1]),
]
CYCLE = ["bilinear", "nearest", "pixelshuffle", "carafe"]


def strides_by_kind(net: torch.nn.Module, size: int = 64) -> dict[str, set[int]]:
    """``{upsampler class name: the output strides it produced}`` in one forward pass of a ``size``² image."""
    seen: dict[str, set[int]] = {}
    for module in net.modules():
        if type(module) in UPSAMPLERS.values():
            module.register_forward_hook(
                lambda m, args, out: seen.setdefault(type(m).__name__, set()).add(size // out.shape[-1])
            )
    with torch.no_grad():
        net.eval()(torch.randn(1, 3, size, size))
    return seen


@pytest.mark.parametrize("network,options,strides", STAGED, ids=lambda value: str(value))
def test_each_stage_gets_the_upsampler_its_entry_names_deepest_first(network, options, strides):
    names = [CYCLE[i % len(CYCLE)] for i in range(len(strides))]
    net = build_network(network, 4, {"name": "transpose", "stages": names}, **options)
    expected: dict[str, set[int]] = {}
    for name, stride in zip(names, strides, strict=True):
        expected.setdefault(UPSAMPLERS[name].__name__, set()).add(stride)
    assert strides_by_kind(net) == expected
    assert net(torch.randn(2, 3, 37, 53)).shape == (2, 4, 37, 53)


def test_a_named_stage_takes_the_decoder_options_when_it_is_the_decoder_and_its_defaults_otherwise():
    decoder = {
        "name": "carafe",
        "options": {"up_kernel": 3},
        "stages": ["carafe", "dysample", {"name": "carafe", "options": {"up_kernel": 7}}],
    }
    net = build_network("unet", 4, decoder, depth=3, base_width=4)
    deepest, middle, last = net.decoder[2].up, net.decoder[1].up, net.decoder[0].up
    assert deepest.up_kernel == 3 and last.up_kernel == 7  # decoder.options; the mapping's own options
    assert middle.groups == UPSAMPLERS["dysample"](8, 8, 2).groups  # dysample's own default
    assert decoder_label(decoder) == "carafe,dysample,carafe"
    assert decoder_label({"name": "fade", "options": {}}) == "fade"


def test_fcn_starts_every_transposed_stage_bilinear():
    net = build_network("fcn", 4, {"name": "bilinear", "stages": ["transpose", "nearest", "direct"]}, head_channels=8)
    reference = build_network("fcn", 4, {"name": "transpose"}, head_channels=8)
    torch.testing.assert_close(net.up_skip[0].conv.weight, reference.up_skip[0].conv.weight)
    torch.testing.assert_close(net.up_final.conv.weight, reference.up_final.conv.weight)


@pytest.mark.parametrize(
    "stages,message",
    [
        (
            ["bilinear"],
            rf"^decoder.stages must list 3 upsamplers, one per stage, deepest first \(the upsamplings into "
            rf"strides 4, 2, 1\), got \['bilinear'\] \(1\); each entry one of: {VALID}$",
        ),
        ("bilinear", r"^decoder.stages must list 3 upsamplers"),
        (
            ["bilinear", "foo", "carafe"],
            rf"^decoder.stages\[1\]='foo' \(into stride 2\) is not an upsampler; valid: {VALID}$",
        ),
        (["bilinear", {"name": "carafe", "kernel": 3}, "carafe"], r"^decoder.stages\[1\] takes `name` and `options`"),
        # DySample's groups must divide the stage's output channels: 8 into stride 2 (base width 4, doubled once)
        (
            ["bilinear", {"name": "dysample", "options": {"groups": 3}}, "carafe"],
            r"^decoder.stages\[1\]: groups=3 must divide out_channels=8; valid values: 1, 2, 4, 8 \(the ×2 upsampling "
            r"into stride 2, 16 → 8 channels, by dysample\)$",
        ),
    ],
)
def test_bad_stages_are_one_error_naming_the_key_and_the_valid_values(stages, message):
    with pytest.raises(ConfigError, match=message):
        build_network("unet", 2, {"name": "transpose", "stages": stages}, depth=3, base_width=4)


def test_an_option_that_does_not_fit_one_stage_names_that_stage_without_stages_too():
    with pytest.raises(ConfigError, match=r"^decoder: groups=3 must divide out_channels=4; valid values: 1, 2, 4 "):
        build_network("unet", 2, {"name": "dysample", "options": {"groups": 3}}, depth=3, base_width=4)
