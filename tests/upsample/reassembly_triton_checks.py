"""Checks of the Triton kernels of the reassembly (``impl="triton"``, :mod:`upseg.upsample.ops.reassembly_triton`)
against the PyTorch path in float64: forward, both gradients, float32, bf16 and fp16, any strides; the custom
operator under ``opcheck`` and ``torch.compile``; bad input.

Not collected by a plain ``pytest`` run (the name does not start with ``test_``): ``TRITON_INTERPRET`` must be set
before triton is first imported (:mod:`upseg.upsample.ops.reassembly_triton` says why), so
``test_reassembly_triton.py`` runs this file in a fresh process with ``TRITON_INTERPRET=1``, where the kernels run in
Triton's interpreter on CPU tensors. Run by hand without it on a machine with a GPU, it checks the compiled kernels on
CUDA: ``python -m pytest -q tests/upsample/reassembly_triton_checks.py``.

Tolerances, against float64 on the same (rounded) inputs: float32 ``rtol = atol = 1e-5``, the float32 sums of up to
``k²·s² = 784`` products; bf16 ``rtol = 2⁻⁸``, one rounding of the float32 sum to nearest in bf16's 8 significant bits
(what the kernels promise: they sum in float32 and round once) — ``2⁻⁷`` under the interpreter, whose float32 → bf16
conversion rounds toward zero (triton 3.8's ``_convert_float`` without a rounding mode) where the GPU rounds to
nearest; fp16 ``rtol = 2⁻¹¹`` likewise for its 11 bits (numpy rounds to nearest); all with ``atol = 1e-5`` for the
float32 sum."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.reassembly import BAD_INPUTS, random_inputs
from tests.helpers.upsamplers import randomised
from upseg.upsample import build_upsampler
from upseg.upsample.ops.reassembly import reassemble

pytest.importorskip("triton")
from upseg.upsample.ops.reassembly_triton import interpreting, reassemble_op, reassemble_triton  # noqa: E402

if interpreting():
    DEVICE = torch.device("cpu")
elif torch.cuda.is_available():
    DEVICE = torch.device("cuda", torch.cuda.current_device())
else:
    pytest.skip("needs CUDA, or TRITON_INTERPRET=1 set before triton is imported", allow_module_level=True)

BF16_RELATIVE = 2**-7 if interpreting() else 2**-8  # the interpreter rounds to bf16 toward zero, the GPU to nearest
TOLERANCES = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.bfloat16: {"rtol": BF16_RELATIVE, "atol": 1e-5},
    torch.float16: {"rtol": 2**-11, "atol": 1e-5},
}


def on_device(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(DEVICE) for t in tensors)


def value_and_gradients(impl, x, kernels, grad, k, s):  # noqa: ANN001
    x, kernels, grad = on_device(x, kernels, grad)
    x, kernels = x.detach().requires_grad_(), kernels.detach().requires_grad_()
    output = reassemble(x, kernels, k, s, impl)
    return (output, *torch.autograd.grad(output, (x, kernels), grad))


def check_against_the_pytorch_path(x, kernels, grad, k, s):  # noqa: ANN001
    """Triton's output and gradients, in the inputs' dtype, against the chunked Function's in float64."""
    actual = value_and_gradients("triton", x, kernels, grad, k, s)
    expected = value_and_gradients("torch", x.double(), kernels.double(), grad.double(), k, s)
    for what, got, want in zip(("output", "∂x", "∂K"), actual, expected, strict=True):
        assert got.dtype == x.dtype, what
        torch.testing.assert_close(got.double(), want, **TOLERANCES[x.dtype], msg=lambda m, what=what: f"{what}: {m}")


CASES = [
    # (k_up, scale, batch, channels, size): 5×7 maps, so that every k_up reaches the borders and several programs
    # share a map
    (3, 2, 2, 3, (5, 7)),
    (3, 4, 1, 3, (5, 7)),
    (5, 2, 1, 3, (5, 7)),
    (5, 4, 1, 3, (5, 7)),
    (7, 2, 1, 3, (5, 7)),
    (7, 4, 1, 3, (5, 7)),
    (5, 3, 1, 3, (1, 1)),  # one pixel: all taps but the centre fall outside
    (3, 1, 1, 19, (4, 3)),  # no upsampling; two blocks of channels, the second partly masked
]


@pytest.mark.parametrize(("kernel_size", "scale", "batch", "channels", "size"), CASES)
def test_forward_and_backward_match_the_pytorch_path_in_float32(kernel_size, scale, batch, channels, size):
    seed = kernel_size + scale
    x, kernels, grad = random_inputs(batch, channels, size, kernel_size, scale, seed=seed, dtype=torch.float32)
    check_against_the_pytorch_path(x, kernels, grad, kernel_size, scale)


@pytest.mark.parametrize(
    ("dtype", "kernel_size", "scale"),
    [(torch.bfloat16, 3, 2), (torch.bfloat16, 5, 4), (torch.bfloat16, 7, 2), (torch.float16, 5, 2)],
)
def test_bf16_and_fp16_are_summed_in_float32_and_rounded_once(dtype, kernel_size, scale):
    x, kernels, grad = random_inputs(1, 3, (5, 7), kernel_size, scale, seed=kernel_size, dtype=dtype)
    check_against_the_pytorch_path(x, kernels, grad, kernel_size, scale)


def test_any_strides_are_read_where_they_point():
    x, kernels, grad = random_inputs(2, 3, (5, 7), 3, 2, seed=1, dtype=torch.float32)
    x, kernels = x.contiguous(memory_format=torch.channels_last), kernels.contiguous(memory_format=torch.channels_last)
    grad = grad[:, :1].expand_as(grad)  # stride 0 over the channels, as from y.sum(1)
    check_against_the_pytorch_path(x, kernels, grad, 3, 2)


def test_the_custom_operator_passes_opcheck():
    # schema, fake (meta) implementation against the real one, autograd registration, AOT dispatch with dynamic shapes
    x, kernels, _ = random_inputs(1, 2, (3, 2), 3, 2, seed=2, dtype=torch.float32)
    x, kernels = on_device(x, kernels)
    results = torch.library.opcheck(reassemble_op, (x.requires_grad_(), kernels.requires_grad_(), 3, 2))
    assert set(results.values()) == {"SUCCESS"}, results


def test_torch_compile_traces_the_custom_operator_as_one_node():
    layer = randomised(build_upsampler("carafe", 4, 3, 2, up_kernel=3, impl="triton"), seed=3).float().to(DEVICE)
    x = torch.randn(2, 4, 5, 7, device=DEVICE, requires_grad=True)
    targets = set()

    def recording_backend(graph_module, example_inputs):  # noqa: ANN001
        targets.update(node.target for node in graph_module.graph.nodes if node.op == "call_function")
        return graph_module.forward

    compiled = torch.compile(layer, fullgraph=True, backend=recording_backend)
    expected, actual = layer(x), compiled(x)
    assert any("upseg.reassemble" in str(target) for target in targets), targets
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    grad = torch.randn_like(expected)
    wrt = (x, *layer.parameters())
    for want, got in zip(torch.autograd.grad(expected, wrt, grad), torch.autograd.grad(actual, wrt, grad), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_carafe_and_fade_on_triton_match_them_on_the_pytorch_path():
    for name, options in (("carafe", {}), ("fade", {"guide_channels": 2})):
        triton_layer = build_upsampler(name, 4, 3, 2, up_kernel=5, impl="triton", **options)
        torch_layer = build_upsampler(name, 4, 3, 2, up_kernel=5, impl="torch", **options)
        triton_layer.load_state_dict(randomised(torch_layer, seed=4).float().state_dict())
        triton_layer, torch_layer = triton_layer.to(DEVICE), torch_layer.to(DEVICE)
        args = on_device(torch.randn(1, 4, 5, 7), *((torch.randn(1, 2, 10, 14),) if options else ()))
        torch.testing.assert_close(triton_layer(*args), torch_layer(*args), **TOLERANCES[torch.float32])


def test_flops_are_counted_as_for_the_unfold_path():
    from torch.utils.flop_counter import FlopCounterMode

    x, kernels, grad = random_inputs(1, 3, (4, 5), 5, 2, seed=5, dtype=torch.float32)
    counts = {}
    for impl in ("triton", "unfold"):
        with FlopCounterMode(display=False) as counter:
            value_and_gradients(impl, x, kernels, grad, 5, 2)
        counts[impl] = counter.get_total_flops()
    assert counts["triton"] == counts["unfold"] > 0


def test_double_backward_raises_pytorchs_error_for_an_operator_without_one():
    x, kernels = on_device(*random_inputs(1, 2, (3, 3), 3, 2, seed=6, dtype=torch.float32)[:2])
    x.requires_grad_(), kernels.requires_grad_()
    (grad_x,) = torch.autograd.grad(reassemble(x, kernels, 3, 2, "triton").sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="no autograd formula was registered"):
        grad_x.sum().backward()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_the_same_value_error_on_the_triton_path(case):
    features, kernels, kernel_size, scale, (dtype, device), match = BAD_INPUTS[case]
    device = DEVICE if device == "cpu" else device  # "meta" stays a different device
    with pytest.raises(ValueError, match=match.replace("on cpu", f"on {DEVICE}")):
        x = torch.randn(features, device=DEVICE)
        reassemble_triton(x, torch.randn(kernels, dtype=dtype, device=device), kernel_size, scale)


def test_float64_and_cpu_tensors_without_the_interpreter_say_which_path_takes_them(monkeypatch):
    x, kernels, _ = random_inputs(1, 2, (3, 3), 3, 2, seed=7)
    with pytest.raises(ValueError, match="impl='triton' takes float32, bfloat16 or float16 .* got torch.float64"):
        reassemble(*on_device(x, kernels), 3, 2, "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=r"impl='triton' needs CUDA tensors \(or TRITON_INTERPRET=1"):
        reassemble(x.float(), kernels.float(), 3, 2, "triton")
