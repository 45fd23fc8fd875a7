"""The upsampler family: transposed convolution two ways, resize-convolutions, sub-pixel convolution and the
content-aware upsamplers CARAFE, DySample and FADE.

Layout: one module per registered upsampler at this level, named after its registered name (``direct.py`` registers
``direct``); :mod:`.registry`, the one builder every network goes through; :mod:`.ops`, the machinery they share
(functional and polyphase transposed convolution, reassembly, projection, option checks). Every module at this level
is imported here, so a new upsampler is one module with a ``@register_upsampler("name")`` class (plus its
``configs/decoder/name.yaml``), with no list to edit. This package imports nothing but torch.
"""

import importlib
import pkgutil

from upseg.upsample.ops.direct_conv import conv_transpose2d_direct
from upseg.upsample.ops.direct_conv_transpose2d import DirectConvTranspose2d
from upseg.upsample.registry import UPSAMPLERS, build_upsampler, needs_guide, register_upsampler, upsampler_options

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # importing a module registers its upsamplers

__all__ = [
    "UPSAMPLERS",
    "DirectConvTranspose2d",
    "build_upsampler",
    "conv_transpose2d_direct",
    "needs_guide",
    "register_upsampler",
    "upsampler_options",
]
