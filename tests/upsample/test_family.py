"""Every registered upsampler, tested alike: exact output size, gradients (gradcheck), torch.export, torch.compile
with fullgraph, channels_last and bf16 autocast. Parametrised over the registry, so registering an upsampler is
enough for it to be tested here."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.func import functional_call

from tests.helpers.upsamplers import build, inputs, randomised
from upseg.upsample import UPSAMPLERS

NAMES = sorted(UPSAMPLERS)
SIZES = [(1, 1), (5, 7), (8, 8), (13, 6)]


def test_the_family_has_all_eight():
    # Parametrising over an empty or partly imported registry would pass by testing less.
    assert {"transpose", "direct", "bilinear", "nearest", "pixelshuffle", "carafe", "dysample", "fade"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_is_exactly_scale_times_the_input(name, scale):
    upsampler = build(name, 5, 4, scale)
    for size in SIZES:
        assert upsampler(*inputs(name, 2, 5, size, scale)).shape == (2, 4, scale * size[0], scale * size[1])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [2, 4])
def test_gradients_pass_gradcheck_in_float64(name, scale):
    """Gradients w.r.t. the input, the guide and every parameter against finite differences."""
    layer = randomised(build(name, 3, 4, scale), seed=scale)
    names = [key for key, _ in layer.named_parameters()]
    args = tuple(t.requires_grad_() for t in inputs(name, 1, 3, (3, 2), scale, torch.float64))
    parameters = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())

    def run(*tensors: torch.Tensor) -> torch.Tensor:
        state = dict(zip(names, tensors[len(args) :], strict=True))
        return functional_call(layer, state, tensors[: len(args)])

    assert torch.autograd.gradcheck(run, (*args, *parameters), fast_mode=True)


@pytest.mark.parametrize("name", NAMES)
def test_torch_export_matches_eager(name):
    torch.manual_seed(0)
    layer = randomised(build(name, 6, 4, 2), seed=1).float().eval()
    args = inputs(name, 2, 6, (5, 7), 2)
    program = torch.export.export(layer, args)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*args), layer(*args), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_torch_compile_fullgraph_matches_eager(name):
    """One graph (no break), same outputs and gradients; aot_eager traces what inductor would compile."""
    layer = randomised(build(name, 6, 4, 2), seed=2)
    args = tuple(t.requires_grad_() for t in inputs(name, 2, 6, (5, 7), 2, torch.float64))
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    expected, actual = layer(*args), compiled(*args)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(expected)
    wrt = (*args, *layer.parameters())
    for want, got in zip(torch.autograd.grad(expected, wrt, grad), torch.autograd.grad(actual, wrt, grad), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_input_gives_the_same_values(name):
    layer = randomised(build(name, 6, 4, 2), seed=3)
    args = inputs(name, 2, 6, (5, 7), 2, torch.float64)
    channels_last = tuple(t.contiguous(memory_format=torch.channels_last) for t in args)
    torch.testing.assert_close(layer(*channels_last), layer(*args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_runs_on_the_cpu_and_stays_close(name):
    # As initialised: with redrawn weights CARAFE's kernel logits grow to tens, whose bf16 rounding then dominates.
    torch.manual_seed(4)
    layer = build(name, 8, 8, 2)
    args = inputs(name, 2, 8, (6, 5), 2)
    reference = layer(*args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = layer(*args)
    assert output.shape == reference.shape and torch.isfinite(output).all()
    # bf16 keeps 8 bits of mantissa: a few parts in a thousand per operation
    assert (output.float() - reference).abs().max() <= 0.03 * reference.abs().max()


def test_importing_the_upsamplers_imports_only_torch():
    """``import upseg.upsample`` loads torch and upseg's own modules, nothing else (no Lightning, Hydra, ...)."""
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "import upseg.upsample\n"
        "new = {name.split('.')[0] for name in set(sys.modules) - before}\n"
        "print(','.join(sorted(new)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().split(",") == ["upseg"], result.stdout
