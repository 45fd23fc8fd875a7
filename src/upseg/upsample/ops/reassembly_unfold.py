"""The reassembly (:mod:`.reassembly` has the formula) as one ``einsum`` over an unfold view, differentiated by
autograd: ``impl="unfold"``, upseg's first implementation, kept as the portable path for ``torch.export`` and ONNX and
as the "before" of the benchmark.

The ``k×k`` neighbourhoods are taken at the LOW resolution, as a view of the zero-padded input (``Tensor.unfold``,
``N×C×h×w×k×k``), and all ``s²`` sub-pixels of a source pixel — which share its neighbourhood and differ only in
their kernels — are reassembled at once by one batched matrix product per source pixel (``C×k²`` neighbourhood times
``k²×s²`` kernels). The product copies the neighbourhoods once (``k²`` times the input, ``k²/s²`` times the output)
and autograd keeps that copy for the backward pass. Measured at ``N=4, C=128, 64²→128², k=5`` on two CPU cores,
forward and backward, peak of the tensors created (:mod:`upseg.analysis.cost`; the output is 32 MiB): this form 0.42 s
and 515 MiB; ``F.unfold`` instead of the view 0.78 s and 515 MiB; unfolding at the output resolution (nearest-upsampled
neighbourhoods, then a weighted sum) 1.5 s and 2,477 MiB; a loop over the 25 taps with broadcast multiply-adds 1.9 s
and 167 MiB. :mod:`.reassembly_chunked` computes the same without keeping the copy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from upseg.upsample.ops.reassembly_checks import check_reassembly_inputs


def reassemble_unfold(features: Tensor, kernels: Tensor, kernel_size: int, scale_factor: int) -> Tensor:
    """``N×C×h×w`` features and ``N×k²×sh×sw`` kernels (``k = kernel_size``, ``s = scale_factor``) → ``N×C×sh×sw``."""
    check_reassembly_inputs(features, kernels, kernel_size, scale_factor)
    n, channels, height, width = features.shape
    radius = kernel_size // 2
    padded = F.pad(features, (radius, radius, radius, radius))
    neighbourhoods = padded.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # N×C×h×w×k×k, a view
    kernels = kernels.reshape(n, kernel_size, kernel_size, height, scale_factor, width, scale_factor)
    output = torch.einsum("nchwab,nabhpwq->nchpwq", neighbourhoods, kernels)
    return output.reshape(n, channels, scale_factor * height, scale_factor * width)
