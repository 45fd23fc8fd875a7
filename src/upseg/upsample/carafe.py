"""CARAFE: content-aware reassembly of features (Wang et al., ICCV 2019).

``N×C_in×h×w`` → ``N×C_out×sh×sw`` in two parts.

Kernel prediction, from the input itself:

    1×1 conv C_in → C_m (channel compressor, ``compressed_channels``, default 64, the papers' value; ``"in/D"``
    makes it ``C_in // D``, at least 1, a width that follows the input, e.g. ``"in/4"`` as the paper's 256 → 64 for FPN)
    → k_enc×k_enc conv C_m → s²·k_up² (content encoder, ``encoder_kernel``, default 3; padding k_enc // 2)
    → pixel shuffle by s (``N×k_up²×sh×sw``) → softmax over the k_up² taps,

so every output pixel gets its own ``k_up×k_up`` kernel (``up_kernel``, default 5), non-negative and summing to one.

Reassembly (:func:`upseg.upsample.ops.reassembly.reassemble`): output pixel ``(i, j)`` is the kernel-weighted sum of the
``k_up×k_up`` neighbourhood of source pixel ``(⌊i/s⌋, ⌊j/s⌋)``, zero outside the image, the same weights for every
channel. Option ``impl`` picks how it is computed: ``"auto"`` (default: the Triton kernel on CUDA, the memory-lean
PyTorch Function elsewhere), ``"triton"``, ``"torch"`` or ``"unfold"`` (the first implementation, which keeps a copy
of every neighbourhood for the backward pass); all give the same values.

CARAFE keeps the channel count; the registry's ``out_channels`` comes from a 1×1 projection of the input BEFORE the
reassembly, at the low resolution (:mod:`upseg.upsample.ops.projection`): the reassembly's weights are shared by all
channels, so projecting first gives the same result (up to the projection's bias near the border) for ``s²`` times
fewer multiply-adds, and the reassembly then works on ``C_out`` channels instead of ``C_in``. The kernels are
predicted from the unprojected input. As in the paper, the content encoder starts near zero (normal, std 0.001), so
the layer starts as a ``k_up×k_up`` box average of the source neighbourhood; the compressor starts Xavier-uniform.

Parameters: ``C_in·C_m + C_m + k_enc²·C_m·s²·k_up² + s²·k_up²`` plus the projection; with ``s`` large this grows as
``s²`` (FCN-8s's final ×8 upsampler: 0.9 M parameters at the defaults).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from upseg.upsample.ops.options import channel_width, odd_kernel
from upseg.upsample.ops.projection import channel_projection
from upseg.upsample.ops.reassembly import check_impl, reassemble
from upseg.upsample.registry import register_upsampler


@register_upsampler("carafe")
class CARAFEUpsampler(nn.Module):
    """CARAFE; options ``up_kernel`` (k_up, odd), ``encoder_kernel`` (k_enc, odd), ``compressed_channels`` (C_m, an
    int or ``"in/D"``), ``impl`` (how the reassembly is computed)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        up_kernel: int = 5,
        encoder_kernel: int = 3,
        compressed_channels: int | str = 64,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self.up_kernel = odd_kernel("up_kernel", up_kernel)
        encoder_kernel = odd_kernel("encoder_kernel", encoder_kernel)
        compressed_channels = channel_width("compressed_channels", compressed_channels, in_channels)
        self.impl = check_impl(impl)
        self.scale_factor = scale_factor
        self.project = channel_projection(in_channels, out_channels)
        self.compressor = nn.Conv2d(in_channels, compressed_channels, 1)
        self.content_encoder = nn.Conv2d(
            compressed_channels, scale_factor**2 * up_kernel**2, encoder_kernel, padding=encoder_kernel // 2
        )
        nn.init.xavier_uniform_(self.compressor.weight)
        nn.init.zeros_(self.compressor.bias)
        nn.init.normal_(self.content_encoder.weight, std=0.001)
        nn.init.zeros_(self.content_encoder.bias)

    def kernels(self, x: Tensor) -> Tensor:
        """``N×C_in×h×w`` → the reassembly kernels ``N×k_up²×sh×sw`` (softmax over dimension 1)."""
        logits = F.pixel_shuffle(self.content_encoder(self.compressor(x)), self.scale_factor)
        return logits.softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return reassemble(self.project(x), self.kernels(x), self.up_kernel, self.scale_factor, self.impl)

    def extra_repr(self) -> str:
        return f"up_kernel={self.up_kernel}, scale_factor={self.scale_factor}, impl={self.impl!r}"
