"""The logits of a network for whole images, under the :class:`~upseg.inference.InferenceSettings`.

For scales ``s ∈ scales`` and, with ``flip``, the horizontal mirror ``F``, the result is the mean

    z = 1/|T| · Σ_{t ∈ T} t⁻¹( f( t(x) ) ),      T = {resize_s} × {identity, F},

of one pass ``f`` — the network on the whole image (``mode=whole``) or in sliding windows (``mode=slide``,
:func:`~upseg.inference.sliding_window_logits`) — per transform, each mapped back to the input's size and
orientation (``resize_s``: bilinear to ``round(s·H)×round(s·W)``, its inverse bilinear back to ``H×W``; ``F⁻¹ = F``).
Logits are averaged, not probabilities (mmsegmentation averages softmax outputs; on logits the mean of two equally
sure passes keeps its sharpness). With one scale of 1 and no flip, ``z = f(x)`` exactly.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from upseg.inference.settings import InferenceSettings
from upseg.inference.windows import Network, sliding_window_logits


def one_pass(network: Network, images: Tensor, settings: InferenceSettings) -> Tensor:
    """The network's logits for ``images`` in ``settings.mode``."""
    if settings.mode == "whole":
        return network(images)
    return sliding_window_logits(
        network, images, settings.crop_size, settings.stride_size, settings.blend, settings.batch_size
    )


def infer_logits(network: Network, images: Tensor, settings: InferenceSettings | None = None) -> Tensor:
    """``N×C×H×W`` images → ``N×K×H×W`` logits, averaged over the settings' scales and flips (see the module
    docstring); ``settings=None`` is one whole-image pass."""
    settings = settings or InferenceSettings()
    size = images.shape[-2:]
    total, passes = None, 0
    for scale in settings.scales:
        scaled = images
        if scale != 1.0:
            scaled_size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            scaled = F.interpolate(images, size=scaled_size, mode="bilinear", align_corners=False)
        for flipped in (False, True) if settings.flip else (False,):
            logits = one_pass(network, scaled.flip(-1) if flipped else scaled, settings)
            if flipped:
                logits = logits.flip(-1)
            if scale != 1.0:
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            total = logits if total is None else total + logits
            passes += 1
    assert total is not None
    return total if passes == 1 else total / passes
