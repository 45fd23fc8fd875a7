"""Segmentation networks: the contract every network fulfils (:mod:`.base`), the registry and builder
(:mod:`.registry`), one module per registered network (``unet``, ``fcn``, ``fpn``) and their shared parts
(:mod:`.blocks`, :mod:`.encoders`, :mod:`.timm_encoders`). Each network asks the upsampler builder
(:mod:`upseg.upsample`) for its upsamplers and maps ``N×C×H×W`` → logits ``N×num_classes×H×W`` for any ``H, W``.
Every module here is imported, so a new network is one module with a ``@register_network("name")`` class plus its
``configs/model/<name>.yaml``, with no list to edit. Imports :mod:`upseg.upsample`, :mod:`upseg.errors`, torch,
torchvision and (only when a ``timm:`` encoder is asked for) timm, nothing else of upseg."""

import importlib
import pkgutil

from upseg.models.base import SegmentationNetwork, StageDecoder, decoder_label
from upseg.models.registry import NETWORKS, build_network, register_network

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # importing a module registers its networks

__all__ = ["NETWORKS", "SegmentationNetwork", "StageDecoder", "build_network", "decoder_label", "register_network"]
