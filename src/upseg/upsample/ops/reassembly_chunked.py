"""The memory-lean reassembly on the PyTorch path (``impl="torch"``): an autograd Function that saves only its inputs
and works in bands of source rows, so that no ``C·k²·h·w``-sized tensor (a copy of every pixel's neighbourhood)
exists at once, in the forward pass or the backward.

With features ``x`` (``N×C×h×w``, zero-padded by ``r = ⌊k/2⌋`` to ``x̄``), kernels ``K`` (``N×k²×sh×sw``), output
``y`` (``N×C×sh×sw``, :mod:`.reassembly` has the formula) and its gradient ``g``, per band of source rows
``[h₀, h₁)`` and its output rows ``[s·h₀, s·h₁)``:

    forward    y[n, c, i, j]   = Σ_{a,b} K[n, (a,b), i, j] · x̄[n, c, ⌊i/s⌋ + a, ⌊j/s⌋ + b]
    kernels    ∂K[n, (a,b), i, j] = Σ_c  g[n, c, i, j] · x̄[n, c, ⌊i/s⌋ + a, ⌊j/s⌋ + b]
    features   z[n, c, (a,b), u, v] = Σ_{p,q < s} K[n, (a,b), su + p, sv + q] · g[n, c, su + p, sv + q]
               ∂x̄[n, c, u + a, v + b] += z[n, c, (a,b), u, v]      (``F.fold``, the adjoint of the unfold)

each contraction one ``einsum`` over the band's neighbourhoods, a view of ``x̄``'s rows ``[h₀, h₁ + 2r)`` (the band and
its halo) unfolded to ``N×C×(h₁−h₀)×w×k×k``; the einsum copies only that band's neighbourhoods. The bands' gradients
of ``x̄`` overlap by ``2r`` rows and are added; ``∂x`` is the interior of ``∂x̄``. ``∂x̄`` is accumulated in float32
for bf16 and fp16 inputs.

Band height: as many rows as keep a band's neighbourhood copy within ``BAND_ELEMENTS`` (2¹⁹ values, 2 MiB in float32),
at least one. Chosen by measuring forward+backward (best of 3) on one thread of a shared two-core CPU, ``k=5``,
against the unfold path (:mod:`.reassembly_unfold`); peak of the tensors created (:mod:`upseg.analysis.cost`):

    N=2, C=32, 64²→128² (output 4 MiB; the whole neighbourhood copy 25 MiB):
      unfold einsum, autograd            68 ms   64.2 MiB
      bands of 1 / 2 / 4 rows            80 / 66 / 59 ms   10.6 / 11.2 / 13.0 MiB
      bands of 8 / 16 rows               62 / 66 ms        16.5 / 23.7 MiB
      bands of 4 rows, k² shifted adds   67 ms   13.0 MiB   (for ∂x̄, instead of ``F.fold``)
      chunks of 4 / 8 / 16 channels      130 / 96 / 84 ms  18.1 / 25.0 / 38.8 MiB
      a loop over the 25 taps, autograd  307 ms  18.4 MiB   (broadcast multiply-adds at the output resolution)
    with the 2 MiB budget, this implementation against the unfold path:
      N=2, C=32,  128²→256² (2 rows):  243 ms, 41 MiB  against  345 ms, 257 MiB
      N=2, C=256, 32²→64²   (1 row):   120 ms, 19 MiB  against  158 ms, 118 MiB
      N=1, C=32,  64²→256², s=4 (10 rows): 46 ms, 22 MiB against 44 ms, 54 MiB

Bands beat chunks of channels because each band's kernel gradient is written once, where chunks of channels add into
the whole kernel gradient (``k²s²`` values per source pixel) once per chunk; bands of a few rows beat the whole map
at once too, likely because their temporaries stay small enough for the allocator to reuse instead of mapping anew. The
timings are a shared machine's (±20 %); the benchmark (``scripts/benchmark.py``, variants ``carafe[torch]`` and
``carafe[unfold]``) measures the layers on an idle one.

Double backward is supported: the backward pass is written with differentiable operations, so autograd can
differentiate it in turn (``gradgradcheck`` passes); it then keeps what that needs, neighbourhood copies included.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from upseg.upsample.ops.reassembly_checks import check_reassembly_inputs

BAND_ELEMENTS = 2**19
"""Most values of one band's neighbourhood copy (``N·C·k²·w`` per source row); see the module docstring."""


def band_rows(batch: int, channels: int, width: int, kernel_size: int) -> int:
    """Source rows per band: as many as keep ``batch·channels·k²·width·rows`` within ``BAND_ELEMENTS``, at least 1."""
    return max(1, BAND_ELEMENTS // max(1, batch * channels * kernel_size**2 * width))


def _bands(height: int, rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + rows, height)) for start in range(0, height, rows)]


def _neighbourhoods(padded: Tensor, start: int, stop: int, kernel_size: int) -> Tensor:
    """The ``N×C×(stop−start)×w×k×k`` neighbourhoods of source rows ``[start, stop)``: a view of ``padded``."""
    rows = padded[:, :, start : stop + kernel_size - 1]
    return rows.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)


def _padded(features: Tensor, kernel_size: int) -> Tensor:
    radius = kernel_size // 2
    return F.pad(features, (radius, radius, radius, radius))


def _forward(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
    n, channels, height, width = features.shape
    padded = _padded(features, kernel_size)
    kernels = kernels.reshape(n, kernel_size, kernel_size, height, scale_factor, width, scale_factor)
    output = features.new_empty(n, channels, height, scale_factor, width, scale_factor)
    for start, stop in _bands(height, band_rows(n, channels, width, kernel_size)):
        output[:, :, start:stop] = torch.einsum(
            "nchwab,nabhpwq->nchpwq", _neighbourhoods(padded, start, stop, kernel_size), kernels[:, :, :, start:stop]
        )
    return output.view(n, channels, scale_factor * height, scale_factor * width)


def _backward(
    grad_output: Tensor,
    features: Tensor,
    kernels: Tensor,
    kernel_size: int,
    scale_factor: int,
    needs: tuple[bool, bool],
) -> tuple[Tensor | None, Tensor | None]:
    n, channels, height, width = features.shape
    radius = kernel_size // 2
    taps = kernel_size * kernel_size
    padded = _padded(features, kernel_size)
    kernels = kernels.reshape(n, kernel_size, kernel_size, height, scale_factor, width, scale_factor)
    grad = grad_output.reshape(n, channels, height, scale_factor, width, scale_factor)
    accumulate = torch.promote_types(features.dtype, torch.float32)  # the bands' overlapping halos are summed
    grad_kernels = kernels.new_empty(kernels.shape) if needs[1] else None
    grad_padded = padded.new_zeros(padded.shape, dtype=accumulate) if needs[0] else None
    for start, stop in _bands(height, band_rows(n, channels, width, kernel_size)):
        grad_band = grad[:, :, start:stop]
        if grad_kernels is not None:
            grad_kernels[:, :, :, start:stop] = torch.einsum(
                "nchwab,nchpwq->nabhpwq", _neighbourhoods(padded, start, stop, kernel_size), grad_band
            )
        if grad_padded is not None:
            rows = stop - start
            per_tap = torch.einsum("nabhpwq,nchpwq->ncabhw", kernels[:, :, :, start:stop], grad_band)
            columns = per_tap.reshape(n, channels * taps, rows * width).to(accumulate)
            grad_padded[:, :, start : stop + 2 * radius] += F.fold(
                columns, (rows + 2 * radius, width + 2 * radius), kernel_size
            )
    grad_features = None
    if grad_padded is not None:
        grad_features = grad_padded[:, :, radius : radius + height, radius : radius + width].to(features.dtype)
    return grad_features, None if grad_kernels is None else grad_kernels.view(n, taps, *grad_output.shape[-2:])


class ChunkedReassembly(torch.autograd.Function):
    """``apply(features, kernels, kernel_size, scale_factor)``: the reassembly, saving only ``features`` and
    ``kernels`` and recomputing the neighbourhoods band by band in the backward pass."""

    @staticmethod
    def forward(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
        return _forward(features, kernels, kernel_size, scale_factor)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        features, kernels, kernel_size, scale_factor = inputs
        ctx.save_for_backward(features, kernels)
        ctx.kernel_size, ctx.scale_factor = kernel_size, scale_factor

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        features, kernels = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        grad_features, grad_kernels = _backward(
            grad_output, features, kernels, ctx.kernel_size, ctx.scale_factor, needs
        )
        return grad_features, grad_kernels, None, None


def reassemble_chunked(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
    """``N×C×h×w`` features and ``N×k²×sh×sw`` kernels (``k = kernel_size``, ``s = scale_factor``) → ``N×C×sh×sw``,
    keeping only the inputs for the backward pass."""
    check_reassembly_inputs(features, kernels, kernel_size, scale_factor)
    return ChunkedReassembly.apply(features, kernels, kernel_size, scale_factor)
