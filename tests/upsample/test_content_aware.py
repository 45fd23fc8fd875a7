"""CARAFE, DySample and FADE against plain-loop references of their papers' formulas, in float64, and their bad
options. The references share no code with upseg: they read the layers' weights and recompute everything pixel by
pixel."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.reassembly import reassemble_reference
from tests.helpers.upsamplers import randomised
from upseg.upsample import build_upsampler
from upseg.upsample.ops.reassembly import reassemble

EXACT = {"rtol": 1e-12, "atol": 1e-12}


def conv_at(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, i: int, j: int) -> torch.Tensor:
    """One output pixel ``(i, j)`` of a stride-1 convolution with padding ``k // 2`` and zeros outside: ``N×C_out``."""
    k = weight.shape[-1]
    r = k // 2
    total = torch.zeros(x.shape[0], weight.shape[0], dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            a, b = i + u - r, j + v - r
            if 0 <= a < x.shape[-2] and 0 <= b < x.shape[-1]:
                total += x[:, :, a, b] @ weight[:, :, u, v].T
    return total if bias is None else total + bias


def pointwise(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 convolution (or the identity) as a matrix product per pixel."""
    if not hasattr(module, "weight"):
        return x
    out = torch.einsum("nchw,oc->nohw", x, module.weight[:, :, 0, 0])
    return out if module.bias is None else out + module.bias[:, None, None]


def softmax_taps(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dimension 1, written out."""
    shifted = logits - logits.max(dim=1, keepdim=True).values
    return shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)


def carafe_reference(layer, x: torch.Tensor) -> torch.Tensor:
    """CARAFE from its definition: compressor, content encoder, the s²·k² channels of source pixel (⌊i/s⌋, ⌊j/s⌋)
    read as k² taps for sub-pixel (i mod s, j mod s) (channel t·s² + (i mod s)·s + j mod s), softmax, reassembly."""
    s, k = layer.scale_factor, layer.up_kernel
    n, _, h, w = x.shape
    compressed = pointwise(layer.compressor, x)
    logits = torch.zeros(n, k * k, s * h, s * w, dtype=x.dtype)
    for src_i in range(h):
        for src_j in range(w):
            encoded = conv_at(compressed, layer.content_encoder.weight, layer.content_encoder.bias, src_i, src_j)
            for p in range(s):
                for q in range(s):
                    taps = [t * s * s + p * s + q for t in range(k * k)]
                    logits[:, :, src_i * s + p, src_j * s + q] = encoded[:, taps]
    return reassemble_reference(pointwise(layer.project, x), softmax_taps(logits), k, s)


def bilinear_border_sample(features: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """``features`` (``C×h×w``) at index coordinates ``(x, y)``, clamped into ``[0, w−1]×[0, h−1]`` (border)."""
    h, w = features.shape[-2:]
    x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    ax, ay = x - x0, y - y0
    return (
        (1 - ay) * (1 - ax) * features[:, y0, x0]
        + (1 - ay) * ax * features[:, y0, x1]
        + ay * (1 - ax) * features[:, y1, x0]
        + ay * ax * features[:, y1, x1]
    )


def dysample_reference(layer, x: torch.Tensor) -> torch.Tensor:
    """DySample from its definition: offsets of sub-pixel (p, q) of group γ from channels ((2γ + xy)·s + p)·s + q of
    the offset convolution (times 0.25, or 0.5·sigmoid(scope)), added to the sub-pixel centre; explicit bilinear
    weights with border clamping, one sample per output pixel and group."""
    s, g = layer.scale_factor, layer.groups
    n, _, h, w = x.shape
    features = pointwise(layer.project, x)
    c = features.shape[1]
    raw = pointwise(layer.offset, x)
    scope = 0.25 if layer.scope is None else 0.5 * torch.sigmoid(pointwise(layer.scope, x))
    offsets = scope * raw
    out = torch.zeros(n, c, s * h, s * w, dtype=x.dtype)
    per_group = c // g
    for batch in range(n):
        for group in range(g):
            channels = slice(group * per_group, (group + 1) * per_group)
            for i in range(s * h):
                for j in range(s * w):
                    p, q = i % s, j % s
                    dx = offsets[batch, ((2 * group) * s + p) * s + q, i // s, j // s].item()
                    dy = offsets[batch, ((2 * group + 1) * s + p) * s + q, i // s, j // s].item()
                    # centre of output pixel (i, j) in input pixel units, minus ½ for index coordinates
                    sample_x, sample_y = (j + 0.5) / s + dx - 0.5, (i + 0.5) / s + dy - 0.5
                    out[batch, channels, i, j] = bilinear_border_sample(features[batch, channels], sample_x, sample_y)
    return out


def fade_kernels_reference(layer, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Semi-shift convolution, pixel by pixel: the content encoder's window at (i, j) over the compressed guide plus
    its window at (⌊i/s⌋, ⌊j/s⌋) over the compressed decoder feature; softmax over the k² taps."""
    s, k = layer.scale_factor, layer.up_kernel
    n, _, h, w = x.shape
    compressed_guide = pointwise(layer.compress_guide, guide)
    compressed_x = pointwise(layer.compress_x, x)
    encoder = layer.content_encoder
    logits = torch.zeros(n, k * k, s * h, s * w, dtype=x.dtype)
    for i in range(s * h):
        for j in range(s * w):
            logits[:, :, i, j] = conv_at(compressed_guide, encoder.weight, encoder.bias, i, j) + conv_at(
                compressed_x, encoder.weight, encoder.bias, i // s, j // s
            )
    return softmax_taps(logits)


def fade_reference(layer, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    s, k = layer.scale_factor, layer.up_kernel
    upsampled = reassemble_reference(pointwise(layer.project, x), fade_kernels_reference(layer, x, guide), k, s)
    if layer.gate_predictor is None:
        return upsampled
    gate_low = torch.sigmoid(pointwise(layer.gate_predictor, x))
    gate = gate_low.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)
    return gate * pointwise(layer.project_guide, guide) + (1 - gate) * upsampled


SIZES = [(1, 1), (3, 4), (5, 2)]


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("size", SIZES)
def test_reassemble_matches_the_formula(reference_record, kernel_size, scale, size):
    generator = torch.Generator().manual_seed(scale * 100 + kernel_size)
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=generator)
    kernels = torch.randn(2, kernel_size**2, scale * size[0], scale * size[1], dtype=torch.float64, generator=generator)
    expected = reassemble_reference(x, kernels, kernel_size, scale)
    actual = reassemble(x, kernels, kernel_size, scale)
    reference_record.add("reassemble vs loop", expected, actual)
    torch.testing.assert_close(actual, expected, **EXACT)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [(3, 3), (3, 5)])
@pytest.mark.parametrize("size", SIZES)
def test_carafe_matches_its_definition(reference_record, scale, channels, size):
    layer = randomised(build_upsampler("carafe", *channels, scale, up_kernel=3, compressed_channels=4), seed=scale)
    x = torch.randn(2, channels[0], *size, dtype=torch.float64)
    expected = carafe_reference(layer, x)
    actual = layer(x)
    reference_record.add("carafe vs loop", expected, actual)
    torch.testing.assert_close(actual, expected, **EXACT)


def test_carafe_default_kernels_are_5x5_and_start_as_a_box_average():
    layer = build_upsampler("carafe", 4, 4, 2).double()
    kernels = layer.kernels(torch.randn(1, 4, 6, 6, dtype=torch.float64))
    assert kernels.shape == (1, 25, 12, 12)
    torch.testing.assert_close(kernels.sum(1), torch.ones(1, 12, 12, dtype=torch.float64))
    assert (kernels * 25 - 1).abs().max() < 0.1  # within 10 % of uniform: the content encoder starts near zero


def test_carafe_projects_before_reassembling_as_it_would_after():
    # Reassembly weights are shared by every channel, so a 1×1 projection commutes with it (its weights exactly; its
    # bias only where every tap lies inside the image).
    layer = randomised(build_upsampler("carafe", 3, 5, 2, up_kernel=3, compressed_channels=4), seed=1)
    x = torch.randn(1, 3, 6, 7, dtype=torch.float64)
    kernels = layer.kernels(x)
    after = pointwise(layer.project, reassemble(x, kernels, 3, 2))
    before = layer(x)
    inner = (..., slice(2, -2), slice(2, -2))  # source pixels whose 3×3 neighbourhood is inside
    torch.testing.assert_close(before[inner], after[inner], **EXACT)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dynamic_scope", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_dysample_matches_explicit_bilinear_sampling(reference_record, scale, groups, dynamic_scope, size):
    layer = build_upsampler("dysample", 3, 4, scale, groups=groups, dynamic_scope=dynamic_scope)
    layer = randomised(layer, seed=scale + groups, scale=2.0)  # offsets of a pixel or two: borders are reached
    x = torch.randn(1, 3, *size, dtype=torch.float64)
    expected = dysample_reference(layer, x)
    actual = layer(x)
    reference_record.add("dysample vs loop", expected, actual)
    torch.testing.assert_close(actual, expected, **EXACT)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [(4, 4), (6, 4)])
def test_dysample_starts_as_bilinear_interpolation(reference_record, scale, channels):
    layer = build_upsampler("dysample", *channels, scale, groups=2).double()
    x = torch.randn(2, channels[0], 5, 7, dtype=torch.float64)
    projected = pointwise(layer.project, x)
    expected = F.interpolate(projected, scale_factor=scale, mode="bilinear", align_corners=False)
    actual = layer(x)
    reference_record.add("dysample with zero offsets vs F.interpolate", expected, actual)
    torch.testing.assert_close(actual, expected, **EXACT)
    # and the same as projecting after the interpolation: sampling with one set of weights per pixel commutes
    after = pointwise(layer.project, F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False))
    torch.testing.assert_close(actual, after, **EXACT)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [(3, 3, 3), (3, 4, 2)])  # (in, out, guide)
@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("size", SIZES)
def test_fade_matches_its_definition(reference_record, scale, channels, gate, size):
    in_channels, out_channels, guide_channels = channels
    layer = build_upsampler(
        "fade", in_channels, out_channels, scale, guide_channels=guide_channels, up_kernel=3, compressed_channels=4,
        gate=gate,
    )  # fmt: skip
    layer = randomised(layer, seed=scale)
    x = torch.randn(2, in_channels, *size, dtype=torch.float64)
    guide = torch.randn(2, guide_channels, scale * size[0], scale * size[1], dtype=torch.float64)
    expected_kernels = fade_kernels_reference(layer, x, guide)
    kernels = layer.kernels(x, guide)
    reference_record.add("fade semi-shift kernels vs loop", expected_kernels, kernels)
    torch.testing.assert_close(kernels, expected_kernels, **EXACT)
    expected = fade_reference(layer, x, guide)
    actual = layer(x, guide)
    reference_record.add("fade vs loop", expected, actual)
    torch.testing.assert_close(actual, expected, **EXACT)


def test_fade_reassembly_uses_the_guide():
    # Two guides differing only inside one sub-pixel block give different outputs there: the guide tells apart the
    # sub-pixels that CARAFE's kernels (predicted from the low resolution alone) cannot.
    layer = randomised(build_upsampler("fade", 2, 2, 2, guide_channels=2, gate=False), seed=0)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    guide = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    changed = guide.clone()
    changed[..., 4, 4] += 1.0
    difference = (layer(x, guide) - layer(x, changed)).abs().sum(1)[0]
    assert difference[3:6, 3:6].min() > 0 and difference[0, 0] == 0


@pytest.mark.parametrize(
    "name,options,match",
    [
        ("carafe", {"up_kernel": 4}, "up_kernel must be a positive odd int"),
        ("carafe", {"encoder_kernel": 0}, "encoder_kernel must be a positive odd int"),
        ("carafe", {"compressed_channels": 0}, "compressed_channels must be a positive int"),
        ("fade", {"guide_channels": 3, "up_kernel": 2}, "up_kernel must be a positive odd int"),
        ("fade", {"guide_channels": 3, "gate": "yes"}, "gate must be true or false"),
        ("fade", {}, "give guide_channels"),
        ("dysample", {"groups": 3}, r"groups=3 must divide out_channels=8; valid values: 1, 2, 4, 8"),
        ("dysample", {"groups": 0}, "groups=0 must divide"),
        ("dysample", {"dynamic_scope": "on"}, "dynamic_scope must be true or false"),
    ],
)
def test_bad_options_raise_one_value_error_naming_the_option(name, options, match):
    with pytest.raises(ValueError, match=match):
        build_upsampler(name, 8, 8, 2, **options)


@pytest.mark.parametrize(
    "guide,match",
    [
        (None, "got none"),
        (torch.randn(1, 3, 8, 8), r"of shape 1×3×10×12 for input 1×4×5×6; got 1×3×8×8"),
        (torch.randn(1, 2, 10, 12), "got 1×2×10×12"),
    ],
)
def test_fade_names_the_guide_it_needs(guide, match):
    layer = build_upsampler("fade", 4, 4, 2, guide_channels=3)
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(1, 4, 5, 6), guide)
