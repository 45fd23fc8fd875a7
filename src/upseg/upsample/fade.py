"""FADE: fusing the assets of decoder and encoder (Lu et al., ECCV 2022), guided by the encoder feature.

``up(x, guide)``: decoder feature ``x`` (``N×C_in×h×w``) and the encoder feature at the output resolution,
``guide`` (``N×C_g×sh×sw``: the U-Net skip, FCN's pool feature; ``C_g = guide_channels``, which the model fills in)
→ ``N×C_out×sh×sw``.

Kernels by "semi-shift" convolution. Both inputs are compressed to ``C_m`` channels by 1×1 convolutions
(``compressed_channels``, default 64, the papers' value, or ``"in/D"`` for ``C_in // D``, at least 1, a width that
follows the decoder feature; the decoder's compressor without bias, which would repeat the guide's), and ONE content
encoder ``E`` (``k_enc×k_enc``, ``encoder_kernel``, default 3, to ``k_up²`` channels) is applied to both:

    K = softmax_taps( E(compress_g(guide)) + nearest_s(E(compress_x(x))) )          N×k_up²×sh×sw

which is a ``k_enc×k_enc`` convolution over the concatenated encoder and decoder features whose window moves one
pixel per output pixel over the guide but one pixel per ``s`` output pixels over the decoder feature — without
upsampling the decoder feature first. The guide is what lets the ``s²`` sub-pixels of one source pixel tell apart
which side of an edge they lie on.

Reassembly (:func:`upseg.upsample.ops.reassembly.reassemble`, ``up_kernel`` = k_up, default 5): CARAFE's, of ``x``
projected to ``C_out`` channels at the low resolution (:mod:`upseg.upsample.ops.projection`), computed as option
``impl`` says (``"auto"``, ``"triton"``, ``"torch"`` or ``"unfold"``, as for CARAFE).

Gate (``gate=true``): ``G = sigmoid(nearest_s(conv1×1(x)))``, one channel, mixes the guide back in:

    y = G · P_g(guide) + (1 − G) · reassembled

with ``P_g`` a 1×1 projection of the guide to ``C_out`` channels (the identity when ``C_g = C_out``, as in the plain
U-Net). As in the authors' public code, the gate is predicted from the decoder feature. This is full FADE, not
FADE-Lite (whose content encoder is depthwise).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upseg.upsample.ops.options import channel_width, odd_kernel, positive_int
from upseg.upsample.ops.projection import channel_projection
from upseg.upsample.ops.reassembly import check_impl, reassemble
from upseg.upsample.registry import register_upsampler


def nearest_upsample(x: Tensor, scale_factor: int) -> Tensor:
    """Every pixel repeated ``s×s`` times: ``N×C×h×w`` → ``N×C×sh×sw``."""
    return F.interpolate(x, size=(x.shape[-2] * scale_factor, x.shape[-1] * scale_factor), mode="nearest")


@register_upsampler("fade")
class FADEUpsampler(nn.Module):
    """FADE; ``forward(x, guide)``. Options ``guide_channels`` (set by the model), ``up_kernel``, ``encoder_kernel``,
    ``compressed_channels`` (an int or ``"in/D"``), ``gate``, ``impl`` (how the reassembly is computed)."""

    needs_guide = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factor: int,
        *,
        guide_channels: int,
        up_kernel: int = 5,
        encoder_kernel: int = 3,
        compressed_channels: int | str = 64,
        gate: bool = True,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self.guide_channels = positive_int("guide_channels", guide_channels)
        self.up_kernel = odd_kernel("up_kernel", up_kernel)
        encoder_kernel = odd_kernel("encoder_kernel", encoder_kernel)
        compressed_channels = channel_width("compressed_channels", compressed_channels, in_channels)
        if not isinstance(gate, bool):
            raise ValueError(f"gate must be true or false, got {gate!r}")
        self.impl = check_impl(impl)
        self.scale_factor = scale_factor
        self.project = channel_projection(in_channels, out_channels)
        self.compress_guide = nn.Conv2d(guide_channels, compressed_channels, 1)
        self.compress_x = nn.Conv2d(in_channels, compressed_channels, 1, bias=False)
        self.content_encoder = nn.Conv2d(compressed_channels, up_kernel**2, encoder_kernel, padding=encoder_kernel // 2)
        self.gate_predictor = nn.Conv2d(in_channels, 1, 1) if gate else None
        self.project_guide = channel_projection(guide_channels, out_channels) if gate else None
        for conv in (self.compress_guide, self.compress_x, self.content_encoder, self.gate_predictor):
            if conv is not None:
                nn.init.xavier_uniform_(conv.weight)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)

    def check_guide(self, x: Tensor, guide: Tensor | None) -> Tensor:
        """``guide`` if it is the ``N×guide_channels×sh×sw`` feature this layer needs, else one ``ValueError``."""
        n, _, height, width = x.shape
        expected = (n, self.guide_channels, self.scale_factor * height, self.scale_factor * width)
        if guide is None or tuple(guide.shape) != expected:
            got = "none" if guide is None else "×".join(map(str, guide.shape))
            raise ValueError(
                f"fade needs guide, the encoder feature at the output resolution, of shape "
                f"{'×'.join(map(str, expected))} for input {'×'.join(map(str, x.shape))}; got {got}"
            )
        return guide

    def kernels(self, x: Tensor, guide: Tensor) -> Tensor:
        """The reassembly kernels ``N×k_up²×sh×sw`` (softmax over dimension 1) by semi-shift convolution."""
        guide = self.check_guide(x, guide)
        from_guide = self.content_encoder(self.compress_guide(guide))
        from_x = nearest_upsample(self.content_encoder(self.compress_x(x)), self.scale_factor)
        return (from_guide + from_x).softmax(dim=1)

    def forward(self, x: Tensor, guide: Tensor | None = None) -> Tensor:
        upsampled = reassemble(self.project(x), self.kernels(x, guide), self.up_kernel, self.scale_factor, self.impl)
        if self.gate_predictor is None:
            return upsampled
        gate = torch.sigmoid(nearest_upsample(self.gate_predictor(x), self.scale_factor))
        return gate * self.project_guide(guide) + (1 - gate) * upsampled

    def extra_repr(self) -> str:
        return (
            f"up_kernel={self.up_kernel}, scale_factor={self.scale_factor}, guide_channels={self.guide_channels}, "
            f"impl={self.impl!r}"
        )
