"""What a network's guided upsamplers are given, seen through forward hooks."""

from __future__ import annotations

import torch

from upseg.upsample import UPSAMPLERS


def fade_guides(net: torch.nn.Module, size: int) -> list[tuple[int, int]]:
    """``(guide channels, guide size)`` of every ``fade`` upsampler of ``net``, in the order they run, for one
    ``size``² image; checks that each was built for the channels it is given (``guide_channels``)."""
    seen = []
    for module in net.modules():
        if isinstance(module, UPSAMPLERS["fade"]):
            module.register_forward_hook(lambda m, args, out: seen.append((m, args[1].shape[1], args[1].shape[-1])))
    with torch.no_grad():
        net.eval()(torch.randn(1, 3, size, size))
    assert all(module.guide_channels == channels for module, channels, _ in seen)
    return [(channels, guide_size) for _, channels, guide_size in seen]
