"""conv_transpose2d_direct and DirectConvTranspose2d, both impls, against PyTorch's transposed convolution: values and
gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from upseg.upsample import DirectConvTranspose2d, build_upsampler, conv_transpose2d_direct
from upseg.upsample.ops.direct_conv import IMPLS

TOLERANCE = {torch.float64: {"rtol": 1e-12, "atol": 1e-12}, torch.float32: {"rtol": 1e-5, "atol": 2e-5}}
GRADIENTS = ("output", "grad input", "grad weight", "grad bias")


def output_extent(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def assert_matches_reference(
    record,
    *,
    impl,
    batch,
    in_channels,
    out_channels,
    size,
    kernel,
    stride,
    padding,
    output_padding,
    dilation,
    groups,
    dtype,
    unbatched=False,
):
    """Compare outputs and the gradients w.r.t. input, weight and bias with F.conv_transpose2d."""
    generator = torch.Generator().manual_seed(hash((size, kernel, stride, padding, dilation, groups)) % 2**31)
    shape = (in_channels, *size) if unbatched else (batch, in_channels, *size)
    x = torch.randn(shape, dtype=dtype, generator=generator, requires_grad=True)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    weight = torch.randn(in_channels, out_channels // groups, *k, dtype=dtype, generator=generator, requires_grad=True)
    bias = torch.randn(out_channels, dtype=dtype, generator=generator, requires_grad=True)
    args = (stride, padding, output_padding, groups, dilation)

    expected = F.conv_transpose2d(x, weight, bias, *args)
    actual = conv_transpose2d_direct(x, weight, bias, *args, impl=impl)
    assert actual.shape == expected.shape
    grad_output = torch.randn(expected.shape, dtype=dtype, generator=generator)
    expected_all = (expected, *torch.autograd.grad(expected, (x, weight, bias), grad_output))
    actual_all = (actual, *torch.autograd.grad(actual, (x, weight, bias), grad_output))

    config = f"{shape} k={kernel} s={stride} p={padding} op={output_padding} d={dilation} g={groups}"
    exact = None
    for index, (name, want, got) in enumerate(zip(GRADIENTS, expected_all, actual_all, strict=True)):
        record.add(impl, config, dtype, want, got)
        if torch.allclose(got, want, **TOLERANCE[dtype]):
            continue
        if dtype == torch.float64:
            torch.testing.assert_close(got, want, **TOLERANCE[dtype], msg=lambda m, n=name: f"{config}: {n}: {m}")
        # PyTorch's float32 gradients are rounded too, and the bias and weight gradients sum over every output pixel
        # in an order that differs between impls. There, be no farther from the float64 result than PyTorch is.
        if exact is None:
            exact_inputs = [t.detach().double().requires_grad_() for t in (x, weight, bias)]
            exact_output = F.conv_transpose2d(*exact_inputs, *args)
            exact = (exact_output, *torch.autograd.grad(exact_output, exact_inputs, grad_output.double()))
        allowed = TOLERANCE[dtype]["atol"] + TOLERANCE[dtype]["rtol"] * exact[index].abs()
        allowed = allowed + (want.double() - exact[index]).abs()
        excess = ((got.double() - exact[index]).abs() - allowed).max().item()
        assert excess <= 0, f"{config}: {name}: farther from float64 than PyTorch's float32 by {excess:.3g}"


def assert_float64_matches_conv_transpose2d(direct, x, kernel, args):
    """``direct(x, weight, bias)`` gives ``F.conv_transpose2d(x, weight, bias, *args)``'s output and its gradients
    w.r.t. ``x``, a random weight (3 output channels) and bias, in float64."""
    x = x.requires_grad_(True)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    weight = torch.randn(x.shape[1], 3, *k, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    expected = F.conv_transpose2d(x, weight, bias, *args)
    actual = direct(x, weight, bias)
    torch.testing.assert_close(actual, expected, **TOLERANCE[torch.float64])
    grad = torch.randn_like(expected)
    for want, got in zip(
        torch.autograd.grad(expected, (x, weight, bias), grad),
        torch.autograd.grad(actual, (x, weight, bias), grad),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **TOLERANCE[torch.float64])


def grid():
    """Every stride 1–4 × kernel 1–5 × dilation 1–3 × padding 0…d·(k−1)+2 × valid output_padding × 5 input sizes."""
    sizes = [(1, 1), (5, 3), (4, 7), (2, 9), (3, 3)]
    cases = []
    for stride, kernel, dilation in itertools.product(range(1, 5), range(1, 6), range(1, 4)):
        for padding in range(dilation * (kernel - 1) + 3):
            for output_padding, size in itertools.product(range(max(stride, dilation)), sizes):
                if min(output_extent(n, kernel, stride, padding, output_padding, dilation) for n in size) < 1:
                    continue
                pair = len(cases) % 2 == 1  # alternate the int and (h, w) forms of every argument
                form = (lambda v: (v, v)) if pair else (lambda v: v)
                cases.append((size, form(kernel), form(stride), form(padding), form(output_padding), form(dilation)))
    return cases


GRID = grid()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_grid_matches_conv_transpose2d(dtype, impl, equivalence_record):
    assert len(GRID) > 3000
    # PyTorch's native CPU kernels, not oneDNN: oneDNN builds a kernel for every new shape, which made the float32
    # grid 5× slower. The random configurations below run float32 through oneDNN, PyTorch's CPU default.
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        check_grid(dtype, impl, equivalence_record)
    finally:
        torch.backends.mkldnn.enabled = mkldnn


def check_grid(dtype, impl, equivalence_record):
    for size, kernel, stride, padding, output_padding, dilation in GRID:
        assert_matches_reference(
            equivalence_record,
            impl=impl,
            batch=2,
            in_channels=2,
            out_channels=3,
            size=size,
            kernel=kernel,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=1,
            dtype=dtype,
        )


@st.composite
def transposed_configs(draw):
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    padding, output_padding = [], []
    for axis in range(2):
        padding.append(draw(st.integers(0, kernel[axis] + 2)))
        output_padding.append(draw(st.integers(0, max(stride[axis], dilation[axis]) - 1)))
        extent = output_extent(
            size[axis], kernel[axis], stride[axis], padding[axis], output_padding[axis], dilation[axis]
        )
        if extent < 1:
            padding[axis] -= (2 - extent) // 2  # shrink padding until the output is non-empty
            padding[axis] = max(padding[axis], 0)
    square = draw(st.booleans())

    def form(pair):
        return pair[0] if square and pair[0] == pair[1] else tuple(pair)

    return {
        "batch": draw(st.integers(1, 3)),
        "unbatched": draw(st.booleans()),
        "in_channels": in_channels,
        "out_channels": out_channels,
        "size": size,
        "kernel": kernel,
        "stride": form(stride),
        "padding": form(padding),
        "output_padding": form(output_padding),
        "dilation": form(dilation),
        "groups": groups,
    }


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=400, deadline=None)
@given(config=transposed_configs(), double=st.booleans())
def test_random_configs_match_conv_transpose2d(impl, config, double, equivalence_record):
    """Non-square kernels, strides, paddings and dilations, groups 1–3, batched and unbatched inputs."""
    x = torch.zeros(1, config["in_channels"], *config["size"])
    weight = torch.zeros(config["in_channels"], config["out_channels"] // config["groups"], *config["kernel"])
    args = (None, config["stride"], config["padding"], config["output_padding"], config["groups"], config["dilation"])
    try:
        F.conv_transpose2d(x, weight, *args)
    except RuntimeError:
        # Whatever PyTorch rejects, ours rejects too, with a ValueError naming the argument.
        with pytest.raises(ValueError):
            conv_transpose2d_direct(x, weight, *args, impl=impl)
        return
    dtype = torch.float64 if double else torch.float32
    assert_matches_reference(equivalence_record, impl=impl, dtype=dtype, **config)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "stride,kernel,padding,dilation",
    [(2, 4, 1, 1), (3, 3, 0, 1), ((2, 3), (3, 5), (1, 2), 1), (2, 3, 1, 3), (4, 5, 2, 2)],
)
def test_output_size_matches_conv_transpose2d(stride, kernel, padding, dilation, impl, equivalence_record):
    """Every reachable ``output_size`` gives ConvTranspose2d's output and gradients; others are rejected alike."""
    torch.manual_seed(0)
    reference = nn.ConvTranspose2d(4, 6, kernel, stride, padding, dilation=dilation, groups=2, dtype=torch.float64)
    direct = DirectConvTranspose2d(
        4, 6, kernel, stride, padding, dilation=dilation, groups=2, dtype=torch.float64, impl=impl
    )
    direct.load_state_dict(reference.state_dict())
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    smallest = reference(x).shape[-2:]
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    for extra_h, extra_w in itertools.product(range(s_h), range(s_w)):
        for output_size in (
            (smallest[0] + extra_h, smallest[1] + extra_w),
            (2, 6, smallest[0] + extra_h, smallest[1] + extra_w),
        ):
            expected = reference(x, output_size=output_size)
            actual = direct(x, output_size=output_size)
            assert actual.shape[-2:] == tuple(output_size[-2:])
            grad = torch.randn_like(expected)
            for want, got in zip(
                torch.autograd.grad(expected, (x, reference.weight, reference.bias), grad),
                torch.autograd.grad(actual, (x, direct.weight, direct.bias), grad),
                strict=True,
            ):
                torch.testing.assert_close(got, want, **TOLERANCE[torch.float64])
            torch.testing.assert_close(actual, expected, **TOLERANCE[torch.float64])
            config = f"output_size {output_size} s={stride} k={kernel} p={padding} d={dilation}"
            equivalence_record.add(impl, config, torch.float64, expected, actual)
    too_large = (smallest[0] + s_h, smallest[1])
    with pytest.raises(ValueError):
        reference(x, output_size=too_large)
    with pytest.raises(ValueError, match="output_size"):
        direct(x, output_size=too_large)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"stride": 2, "output_padding": 2}, "output_padding"),
        ({"stride": 1, "dilation": 1, "output_padding": 1}, "output_padding"),
        ({"stride": 0}, "stride"),
        ({"dilation": 0}, "dilation"),
        ({"padding": -1}, "padding"),
        ({"groups": 4}, "groups"),
        ({"padding": 9}, "padding"),
        ({"stride": (1, 2, 3)}, "stride"),
    ],
)
@pytest.mark.parametrize("impl", IMPLS)
def test_invalid_arguments_name_the_argument(kwargs, match, impl):
    x, weight = torch.randn(1, 6, 3, 3), torch.randn(6, 1, 3, 3)
    with pytest.raises((ValueError, TypeError), match=match):
        conv_transpose2d_direct(x, weight, **kwargs, impl=impl)


def test_invalid_impl_names_impl_and_the_valid_values():
    x, weight = torch.randn(1, 2, 3, 3), torch.randn(2, 2, 3, 3)
    expected = "impl must be one of 'subpixel', 'zero_insertion', got 'fast'"
    with pytest.raises(ValueError, match=expected):
        conv_transpose2d_direct(x, weight, impl="fast")
    with pytest.raises(ValueError, match=expected):
        DirectConvTranspose2d(2, 2, 3, impl="fast")
    with pytest.raises(ValueError, match=expected):
        build_upsampler("direct", 2, 2, 2, impl="fast")


@pytest.mark.parametrize("impl", IMPLS)
def test_output_padding_below_dilation_is_allowed(impl):
    """PyTorch accepts output_padding < max(stride, dilation), not only < stride."""
    x, weight = torch.randn(1, 2, 4, 4, dtype=torch.float64), torch.randn(2, 2, 3, 3, dtype=torch.float64)
    kwargs = {"stride": 1, "dilation": 3, "output_padding": 2}
    torch.testing.assert_close(
        conv_transpose2d_direct(x, weight, **kwargs, impl=impl), F.conv_transpose2d(x, weight, **kwargs)
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_mismatched_channels_are_rejected(impl):
    with pytest.raises(ValueError, match="input channels"):
        conv_transpose2d_direct(torch.randn(1, 3, 4, 4), torch.randn(2, 1, 3, 3), impl=impl)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
@pytest.mark.parametrize(
    "kernel,stride,padding,output_padding,dilation",
    [(4, 2, 1, 0, 1), (3, 3, 1, 2, 1), (2, 2, 0, 0, 3), ((2, 3), (2, 3), (1, 0), (1, 2), (3, 2)), (5, 4, 2, 1, 2)],
)
def test_any_input_layout_matches_conv_transpose2d(impl, layout, kernel, stride, padding, output_padding, dilation):
    """channels_last and non-contiguous inputs (as a decoder may pass) give the same values and gradients."""
    torch.manual_seed(0)
    base = torch.randn(2, 4, 6, 10, dtype=torch.float64)
    x = base.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else base[..., ::2]
    args = (stride, padding, output_padding, 1, dilation)
    assert_float64_matches_conv_transpose2d(
        lambda x, weight, bias: conv_transpose2d_direct(x, weight, bias, *args, impl=impl), x, kernel, args
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "kernel,stride,padding,output_padding,dilation",
    # a shifted interleave, a plain pixel shuffle, a crop, phases sliced one by one (D > 1), mixed axes
    [(4, 2, 1, 0, 1), (2, 2, 0, 0, 1), (3, 3, 1, 2, 1), (2, 2, 0, 0, 3), ((2, 3), (2, 3), (1, 0), (1, 2), (3, 2))],
)
def test_compiles_to_one_graph_that_matches_conv_transpose2d(impl, kernel, stride, padding, output_padding, dilation):
    """``model.compile`` traces the layer whole (``fullgraph``: a graph break is an error) and computes the same."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    args = (stride, padding, output_padding, 1, dilation)

    def direct(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return conv_transpose2d_direct(x, weight, bias, *args, impl=impl)

    # aot_eager traces forward and backward as inductor does, without compiling C++ or Triton.
    assert_float64_matches_conv_transpose2d(torch.compile(direct, backend="aot_eager", fullgraph=True), x, kernel, args)


@pytest.mark.parametrize("kernel,stride,padding", [(4, 2, 1), (2, 2, 0), (3, 3, 0), (6, 2, 2)])
@pytest.mark.parametrize("operand", ["input", "weight"])
def test_channels_last_in_gives_channels_last_out_as_conv_transpose2d(kernel, stride, padding, operand):
    """With ``model.channels_last`` a ``direct`` decoder stays channels_last, as a ``transpose`` one does: no layout
    conversion after each upsampler. (Outputs that the sub-pixel form crops are views, and the zero-insertion
    reference keeps no layout.)"""
    x, weight = torch.randn(2, 8, 5, 6), torch.randn(8, 4, kernel, kernel)
    if operand == "input":
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        weight = weight.contiguous(memory_format=torch.channels_last)
    expected = F.conv_transpose2d(x, weight, None, stride, padding)
    actual = conv_transpose2d_direct(x, weight, None, stride, padding, impl="subpixel")
    assert expected.is_contiguous(memory_format=torch.channels_last)
    assert actual.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(actual, expected, **TOLERANCE[torch.float32])
