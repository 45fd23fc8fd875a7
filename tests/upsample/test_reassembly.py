"""The reassembly's PyTorch paths (:mod:`upseg.upsample.ops.reassembly`): the memory-lean Function (``impl="torch"``)
against loop references of the forward formula and of both gradients in float64, against the unfold path (the
first implementation), gradcheck and gradgradcheck; that it never holds a neighbourhood copy; how ``impl`` is chosen
and checked; bad input; ``compressed_channels="in/D"``. The Triton kernels are in test_reassembly_triton.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from tests.helpers.reassembly import BAD_INPUTS, random_inputs, reassemble_reference
from tests.helpers.upsamplers import build, inputs, randomised
from upseg.upsample import build_upsampler
from upseg.upsample.ops import reassembly, reassembly_chunked
from upseg.upsample.ops.reassembly import IMPLS, chosen_impl, reassemble
from upseg.upsample.ops.reassembly_chunked import band_rows, reassemble_chunked
from upseg.upsample.ops.reassembly_unfold import reassemble_unfold

EXACT = {"rtol": 1e-12, "atol": 1e-12}
PYTORCH_IMPLS = ("torch", "unfold")


def gradients_reference(
    x: torch.Tensor, kernels: torch.Tensor, grad: torch.Tensor, k: int, s: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """∂/∂x and ∂/∂K of ⟨y, g⟩ from the formula, pixel by pixel: every output pixel (i, j) and tap (a, b) that reads
    source pixel (⌊i/s⌋ + a − r, ⌊j/s⌋ + b − r) inside the image adds K·g to that pixel's ∂x and g·x to its ∂K."""
    n, c, h, w = x.shape
    r = k // 2
    grad_x, grad_kernels = torch.zeros_like(x), torch.zeros_like(kernels)
    for i in range(s * h):
        for j in range(s * w):
            for a in range(k):
                for b in range(k):
                    src_i, src_j = i // s + a - r, j // s + b - r
                    if 0 <= src_i < h and 0 <= src_j < w:
                        grad_x[:, :, src_i, src_j] += kernels[:, a * k + b, i, j, None] * grad[:, :, i, j]
                        grad_kernels[:, a * k + b, i, j] = (grad[:, :, i, j] * x[:, :, src_i, src_j]).sum(1)
    return grad_x, grad_kernels


def value_and_gradients(impl: str, x: torch.Tensor, kernels: torch.Tensor, grad: torch.Tensor, k: int, s: int):
    x, kernels = x.detach().requires_grad_(), kernels.detach().requires_grad_()
    output = reassemble(x, kernels, k, s, impl)
    return (output, *torch.autograd.grad(output, (x, kernels), grad))


@pytest.fixture
def one_row_bands(monkeypatch):
    """Bands of a single source row whatever the size, so that every halo and overlap between bands is exercised."""
    monkeypatch.setattr(reassembly_chunked, "BAND_ELEMENTS", 1)


@pytest.mark.parametrize("kernel_size", [1, 3, 5, 7])
@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (5, 7)])
def test_both_pytorch_paths_match_the_loop_references_in_float64(
    reference_record, monkeypatch, kernel_size, scale, size
):
    x, kernels, grad = random_inputs(2, 3, size, kernel_size, scale, seed=10 * scale + kernel_size)
    expected = (
        reassemble_reference(x, kernels, kernel_size, scale),
        *gradients_reference(x, kernels, grad, kernel_size, scale),
    )
    # the default bands (the whole map at these sizes), bands of one row, and the unfold path
    for impl, band_elements in (("torch", reassembly_chunked.BAND_ELEMENTS), ("torch", 1), ("unfold", None)):
        if band_elements is not None:
            monkeypatch.setattr(reassembly_chunked, "BAND_ELEMENTS", band_elements)
        actual = value_and_gradients(impl, x, kernels, grad, kernel_size, scale)
        for what, want, got in zip(("output", "∂x", "∂K"), expected, actual, strict=True):
            reference_record.add(f"reassemble[{impl}] {what} vs loop", want, got)
            torch.testing.assert_close(got, want, **EXACT)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(("kernel_size", "scale"), [(3, 2), (5, 3), (7, 4)])
def test_the_chunked_function_matches_the_unfold_path(one_row_bands, memory_format, kernel_size, scale):
    x, kernels, grad = random_inputs(2, 4, (7, 5), kernel_size, scale, seed=kernel_size)
    x, kernels = x.contiguous(memory_format=memory_format), kernels.contiguous(memory_format=memory_format)
    expected = value_and_gradients("unfold", x, kernels, grad, kernel_size, scale)
    actual = value_and_gradients("torch", x, kernels, grad, kernel_size, scale)
    for want, got in zip(expected, actual, strict=True):
        torch.testing.assert_close(got, want, **EXACT)


def test_gradcheck_and_gradgradcheck_of_the_chunked_function(one_row_bands):
    x, kernels, _ = random_inputs(1, 2, (3, 4), 3, 2, seed=0)
    inputs = (x.requires_grad_(), kernels.requires_grad_())

    def run(features: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        return reassemble_chunked(features, kernels, 3, 2)

    assert torch.autograd.gradcheck(run, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(run, inputs, fast_mode=True)


def test_only_one_gradient_is_computed_when_only_one_is_needed(one_row_bands):
    x, kernels, grad = random_inputs(1, 3, (4, 5), 3, 2, seed=1)
    expected = value_and_gradients("unfold", x, kernels, grad, 3, 2)
    for wrt, want in ((x, expected[1]), (kernels, expected[2])):
        wrt.requires_grad_()
        (got,) = torch.autograd.grad(reassemble_chunked(x, kernels, 3, 2), wrt, grad)
        torch.testing.assert_close(got, want, **EXACT)
        wrt.requires_grad_(False)


class LargestTensor(TorchDispatchMode):
    """The most elements of any one tensor that an operation returns inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self.numel = max(self.numel, value.numel())
        return out


@pytest.mark.parametrize("impl", PYTORCH_IMPLS)
def test_only_the_unfold_path_holds_a_neighbourhood_copy(impl):
    n, c, h, w, k, s = 1, 64, 32, 32, 5, 2
    copy = n * c * k * k * h * w  # a copy of every pixel's k×k neighbourhood
    assert band_rows(n, c, w, k) < h  # several bands at this size
    x, kernels, grad = random_inputs(n, c, (h, w), k, s, seed=2, dtype=torch.float32)
    x.requires_grad_(), kernels.requires_grad_()
    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel())
        return tensor

    with LargestTensor() as largest, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = reassemble(x, kernels, k, s, impl)
    with LargestTensor() as largest_backward:
        torch.autograd.grad(output, (x, kernels), grad)
    most = max(largest.numel, largest_backward.numel)
    if impl == "unfold":
        assert most >= copy
    else:  # nothing larger than a band's neighbourhoods, the output or the kernels; the inputs saved, nothing else
        assert most <= max(reassembly_chunked.BAND_ELEMENTS, output.numel(), kernels.numel()) < copy
        assert sorted(saved) == sorted([x.numel(), kernels.numel()])


def test_compiled_the_chunked_function_still_saves_only_its_inputs():
    x, kernels, grad = random_inputs(1, 8, (9, 6), 5, 2, seed=8, dtype=torch.float32)
    x.requires_grad_(), kernels.requires_grad_()

    def run(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        return reassemble(x * 2, kernels * 2, 5, 2, "torch")  # saved tensors made inside the graph, not leaves

    compiled = torch.compile(run, fullgraph=True, backend="aot_eager")
    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = compiled(x, kernels)
    assert sorted(saved) == sorted([x.numel(), kernels.numel()])
    expected = torch.autograd.grad(run(x, kernels), (x, kernels), grad)
    for got, want in zip(torch.autograd.grad(output, (x, kernels), grad), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_auto_takes_the_chunked_function_on_the_cpu_the_unfold_path_in_export_and_triton_on_cuda(monkeypatch):
    features = torch.randn(1, 2, 3, 3)
    assert chosen_impl("auto", features) == "torch"
    assert [chosen_impl(impl, features) for impl in IMPLS if impl != "auto"] == ["torch", "triton", "unfold"]

    class CudaTensor:  # what chosen_impl reads of a CUDA tensor, on a machine without one
        is_cuda = True
        dtype = torch.float32

    for installed, expected in ((True, "triton"), (False, "torch")):
        monkeypatch.setattr(reassembly, "TRITON_INSTALLED", installed)
        assert chosen_impl("auto", CudaTensor()) == expected
    CudaTensor.dtype = torch.float64  # the Triton kernels take float32, bf16 and fp16 only
    monkeypatch.setattr(reassembly, "TRITON_INSTALLED", True)
    assert chosen_impl("auto", CudaTensor()) == "torch"

    class Reassemble(torch.nn.Module):
        def forward(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
            return reassemble(x, kernels, 3, 2)

    x, kernels, _ = random_inputs(1, 2, (4, 5), 3, 2, seed=3, dtype=torch.float32)
    graph = torch.export.export(Reassemble(), (x, kernels)).graph
    targets = {node.target for node in graph.nodes if node.op == "call_function"}
    assert torch.ops.aten.einsum.default in targets and torch.ops.aten.unfold.default in targets


def test_forcing_triton_without_it_installed_says_so(monkeypatch):
    monkeypatch.setattr(reassembly, "TRITON_INSTALLED", False)
    x, kernels, _ = random_inputs(1, 2, (3, 3), 3, 2, seed=4, dtype=torch.float32)
    with pytest.raises(ValueError, match="impl='triton' needs the triton package"):
        reassemble(x, kernels, 3, 2, "triton")


def test_autocast_casts_both_inputs_as_einsum_would():
    x, kernels, _ = random_inputs(1, 3, (4, 5), 3, 2, seed=5, dtype=torch.float32)
    for impl in PYTORCH_IMPLS:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = reassemble(x.bfloat16(), kernels, 3, 2, impl)  # a bf16 feature meets a float32 softmax
        assert output.dtype == torch.bfloat16
        expected = reassemble(x.bfloat16().double(), kernels.bfloat16().double(), 3, 2, impl)
        torch.testing.assert_close(output.double(), expected, rtol=2**-8, atol=1e-5)


PATHS = {"reassemble": reassemble, "reassemble_chunked": reassemble_chunked, "reassemble_unfold": reassemble_unfold}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_one_value_error_naming_the_argument(path, case):
    features, kernels, kernel_size, scale, (dtype, device), match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        PATHS[path](torch.randn(features), torch.randn(kernels, dtype=dtype, device=device), kernel_size, scale)


@pytest.mark.parametrize("name", ["carafe", "fade"])
def test_carafe_and_fade_give_the_same_values_on_every_pytorch_path(name):
    options = {"guide_channels": 3} if name == "fade" else {}
    layers = {
        impl: build_upsampler(name, 4, 5, 2, up_kernel=3, impl=impl, **options) for impl in ("auto", *PYTORCH_IMPLS)
    }
    state = randomised(layers["auto"], seed=6).state_dict()
    for layer in layers.values():
        layer.double().load_state_dict(state)
    args = (torch.randn(2, 4, 5, 7, dtype=torch.float64),)
    if name == "fade":
        args += (torch.randn(2, 3, 10, 14, dtype=torch.float64),)
    outputs = {impl: layer(*args) for impl, layer in layers.items()}
    for impl in PYTORCH_IMPLS:
        assert layers[impl].impl == impl and f"impl={impl!r}" in repr(layers[impl])
        torch.testing.assert_close(outputs[impl], outputs["auto"], **EXACT)


@pytest.mark.parametrize("name", ["carafe", "fade"])
def test_impl_is_checked_when_the_layer_is_built(name):
    options = {"guide_channels": 3} if name == "fade" else {}
    with pytest.raises(ValueError, match=r"impl must be one of 'auto', 'torch', 'triton', 'unfold', got 'cuda'"):
        build_upsampler(name, 4, 4, 2, impl="cuda", **options)


@pytest.mark.parametrize("name", ["carafe", "fade"])
@pytest.mark.parametrize(
    ("in_channels", "width", "expected"), [(32, "in/4", 8), (256, "in/4", 64), (3, "in/4", 1), (8, 5, 5)]
)
def test_compressed_channels_can_follow_the_input(name, in_channels, width, expected):
    options = {"guide_channels": 3} if name == "fade" else {}
    layer = build_upsampler(name, in_channels, 4, 2, compressed_channels=width, **options)
    compressor = layer.compressor if name == "carafe" else layer.compress_x
    assert compressor.out_channels == expected and layer.content_encoder.in_channels == expected
    default = build_upsampler(name, in_channels, 4, 2, **options)
    assert (default.compressor if name == "carafe" else default.compress_x).out_channels == 64  # the papers'


@pytest.mark.parametrize("width", ["in/0", "out/4", "4", "in/x", 0, 2.5, True])
def test_a_bad_compressed_width_names_the_option_and_both_forms(width):
    with pytest.raises(ValueError, match=rf"compressed_channels must be a positive int or 'in/D' .* got {width!r}"):
        build_upsampler("carafe", 8, 8, 2, compressed_channels=width)


def test_carafe_and_fade_train_where_triton_is_absent():
    # A fresh process in which ``import triton`` fails, as where it is not installed.
    code = (
        "import sys\n"
        "sys.modules['triton'] = None\n"
        "import torch\n"
        "from upseg.upsample import build_upsampler\n"
        "from upseg.upsample.ops import reassembly\n"
        "assert not reassembly.TRITON_INSTALLED\n"
        "x = torch.randn(1, 4, 5, 7, requires_grad=True)\n"
        "build_upsampler('carafe', 4, 4, 2)(x).sum().backward()\n"
        "build_upsampler('fade', 4, 4, 2, guide_channels=3)(x, torch.randn(1, 3, 10, 14)).sum().backward()\n"
        "try:\n"
        "    build_upsampler('carafe', 4, 4, 2, impl='triton')(x)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "impl='triton' needs the triton package" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["carafe", "fade"])
def test_onnx_export_runs_in_onnxruntime_with_the_values_of_eager(name, tmp_path):
    pytest.importorskip("onnxscript")  # torch.onnx.export(dynamo=True) needs it
    onnxruntime = pytest.importorskip("onnxruntime")
    layer = randomised(build(name, 4, 3, 2), seed=7).float().eval()
    args = inputs(name, 1, 4, (5, 7), 2)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(layer, args, dynamo=True).save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {node.name: arg.numpy() for node, arg in zip(session.get_inputs(), args, strict=True)}
    (output,) = session.run(None, feeds)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(output), layer(*args), rtol=1e-5, atol=1e-5)
