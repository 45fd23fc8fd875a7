"""Content-aware reassembly (Wang et al., CARAFE, ICCV 2019), shared by ``carafe`` and ``fade``.

Given features ``x`` (``N×C×h×w``), a scale ``s`` and per-output-pixel kernels ``K`` (``N×k²×sh×sw``, ``k`` odd),

    y[n, c, i, j] = Σ_{a,b ∈ [0, k)}  K[n, a·k + b, i, j] · x[n, c, ⌊i/s⌋ + a − r, ⌊j/s⌋ + b − r],   r = ⌊k/2⌋,

with ``x`` zero outside the image (as the paper and mmcv's kernel): every output pixel is a weighted sum of the
``k×k`` neighbourhood of its source pixel, with weights of its own, the same for every channel. ``y`` is
``N×C×sh×sw``.

Three ways to compute it, ``impl``:

- ``"torch"`` (:mod:`.reassembly_chunked`): an autograd Function that keeps only ``x`` and ``K`` for the backward
  pass and works in bands of rows, so that no copy of every pixel's neighbourhood (``C·k²·h·w``) is ever held;
- ``"triton"`` (:mod:`.reassembly_triton`): fused Triton kernels, forward and backward, for CUDA tensors;
- ``"unfold"`` (:mod:`.reassembly_unfold`): one ``einsum`` over an unfold view, differentiated by autograd, which
  keeps the neighbourhood copy: the first implementation, kept as the portable path and the benchmark's "before";

and ``"auto"``, the default: ``"triton"`` for float32, bf16 and fp16 CUDA tensors where triton can be imported,
``"torch"`` elsewhere.
While ``torch.export`` (and so ONNX export, ``torch.onnx.export(..., dynamo=True)``) traces, ``"auto"`` takes
``"unfold"``: one einsum exports as standard operators for any input size, where the Function's bands would be
unrolled for the traced size and the Triton operator would exist only where this package and a GPU are. Under
``torch.compile`` (not exporting) ``"auto"`` keeps its choice: dynamo traces the Function (its bands unrolled for
the traced size) and the Triton custom operator alike with ``fullgraph=True``, and the compiled Function still saves
only its inputs for the backward pass (checked with ``backend="aot_eager"``).

Under autocast both inputs are first cast to the autocast dtype (float64 excepted), as autocast's ``einsum`` would
cast them, so that a bf16 feature and a float32 softmax can meet; otherwise ``x`` and ``K`` must share dtype and
device. Bad input raises one ``ValueError`` on every path (:mod:`.reassembly_checks`).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from upseg.upsample.ops.reassembly_checks import TRITON_DTYPES, check_reassembly_inputs
from upseg.upsample.ops.reassembly_chunked import reassemble_chunked
from upseg.upsample.ops.reassembly_unfold import reassemble_unfold

IMPLS = ("auto", "torch", "triton", "unfold")
"""Ways to compute the reassembly (see the module docstring); ``auto`` is the default."""


def check_impl(impl: object) -> str:
    """``impl`` itself if it names a way to compute the reassembly, else one ``ValueError`` listing them."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    return impl  # type: ignore[return-value]


def _triton_installed() -> bool:
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # a half-imported or blocked module
        return False


TRITON_INSTALLED = _triton_installed()
"""Whether the triton package is installed (it comes with PyTorch's Linux CUDA wheels), found without importing it,
once: a constant is what ``torch.compile`` can trace."""


def chosen_impl(impl: str, features: Tensor) -> str:
    """The path ``impl`` takes for ``features``: ``"auto"`` resolved (see the module docstring), others as given."""
    impl = check_impl(impl)
    if impl != "auto":
        return impl
    if torch.compiler.is_exporting():
        return "unfold"
    if features.is_cuda and features.dtype in TRITON_DTYPES and TRITON_INSTALLED:
        return "triton"
    return "torch"


def _autocast(features: Tensor, kernels: Tensor) -> tuple[Tensor, Tensor]:
    """Both in the autocast dtype where autocast is on for ``features``' device and would cast them (floating point,
    not float64)."""
    device_type = features.device.type
    if not torch.is_autocast_enabled(device_type):
        return features, kernels
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t for t in (features, kernels))


def reassemble(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int, impl: str = "auto") -> Tensor:
    """``N×C×h×w`` features and ``N×k²×sh×sw`` kernels (``k = kernel_size``, ``s = scale_factor``) → ``N×C×sh×sw``
    (see the module docstring for the formula and the paths ``impl`` chooses)."""
    features, kernels = _autocast(features, kernels)
    check_reassembly_inputs(features, kernels, kernel_size, scale_factor)
    impl = chosen_impl(impl, features)
    if impl == "unfold":
        return reassemble_unfold(features, kernels, kernel_size, scale_factor)
    if impl == "torch":
        return reassemble_chunked(features, kernels, kernel_size, scale_factor)
    if not TRITON_INSTALLED:
        raise ValueError("impl='triton' needs the triton package (pip install triton); use impl='auto' or 'torch'")
    from upseg.upsample.ops.reassembly_triton import reassemble_triton  # imports triton: only on this path

    return reassemble_triton(features, kernels, kernel_size, scale_factor)
