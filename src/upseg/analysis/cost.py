"""What a module costs, device-independently: parameters, FLOPs of a forward pass, and the peak of tensor memory.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-add of convolutions and matrix
products — CARAFE's and FADE's reassembly is a batched matrix product, so it counts — plus, through its
``custom_mapping``, 8 per output value of bilinear interpolation and bilinear grid sampling (4 multiply-adds), which it
does not know. Element-wise arithmetic, softmax and nearest-neighbour copies are not counted.

Peak memory is that of the tensors a piece of code creates (outputs, tensors saved for backward, gradients,
temporaries; not the inputs and parameters that exist before it): a ``TorchDispatchMode`` sees every aten operation,
adds the bytes of each new storage it returns and drops those freed since, and keeps the maximum. It is the same on
every device and needs no allocator statistics; buffers a kernel allocates internally (e.g. a convolution's
workspace) are not seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from math import prod
from typing import Any

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

BILINEAR_FLOPS_PER_VALUE = 8  # 4 neighbours, one multiply-add each


def _bilinear_flops(*args: Any, out_shape: tuple[int, ...], **kwargs: Any) -> int:
    return BILINEAR_FLOPS_PER_VALUE * prod(out_shape)


# Keyed by operator packet (every overload), as FlopCounterMode looks them up.
_EXTRA_FLOPS: dict[Any, Callable[..., int]] = {
    torch.ops.aten.grid_sampler_2d: _bilinear_flops,
    torch.ops.aten.upsample_bilinear2d: _bilinear_flops,
}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def forward_flops(module: nn.Module, *args: torch.Tensor) -> int:
    """FLOPs of ``module(*args)`` (see the module docstring for what counts)."""
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOPS)
    with counter, torch.no_grad():
        module(*args)
    return counter.get_total_flops()


class TensorMemoryPeak(TorchDispatchMode):
    """``with TensorMemoryPeak() as memory: ...`` → ``memory.peak_bytes``: the most bytes of storages created inside
    the block that were alive at once (checked after every aten operation)."""

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current_bytes = 0
        self.peak_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for key in [key for key, (ref, _) in self._live.items() if ref.expired()]:
            self.current_bytes -= self._live.pop(key)[1]
        # A view or an in-place result shares an input's storage: nothing new (and maybe made before the block).
        inputs = {
            StorageWeakRef(value.untyped_storage()).cdata
            for value in tree_flatten((args, kwargs))[0]
            if isinstance(value, torch.Tensor)
        }
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                ref = StorageWeakRef(storage)
                if ref.cdata not in self._live and ref.cdata not in inputs:
                    self._live[ref.cdata] = (ref, storage.nbytes())
                    self.current_bytes += storage.nbytes()
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        return out


def peak_tensor_bytes(step: Callable[[], object]) -> int:
    """Peak bytes of the tensors that ``step()`` creates (see :class:`TensorMemoryPeak`)."""
    with TensorMemoryPeak() as memory:
        step()
    return memory.peak_bytes


def inference_ms_per_image(module: nn.Module, images: torch.Tensor, repeats: int = 3) -> float:
    """Milliseconds per image of ``module(images)`` in eval mode without gradients: the mean of ``repeats`` timed
    passes after one warm-up, with the device synchronised around the timed block (not inside it)."""
    training = module.training
    module.eval()
    synchronize = torch.cuda.synchronize if images.is_cuda else (lambda: None)
    with torch.no_grad():
        module(images)
        synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            module(images)
        synchronize()
        elapsed = time.perf_counter() - start
    module.train(training)
    return 1000 * elapsed / (repeats * len(images))
