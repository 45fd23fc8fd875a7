"""The boundary band of a run: ``model.boundary_width`` pixels or ``model.boundary_dilation_ratio`` of the image
diagonal — one of the two, 0.02 of the diagonal when neither is set — reaches every boundary metric the module
builds, and checkpoints rebuild it."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from upseg.errors import ConfigError
from upseg.metrics import BoundaryIoU
from upseg.training.build import build_module
from upseg.training.module import SegmentationModule


def bands(module: SegmentationModule) -> set[tuple[float, int | None]]:
    """``(ratio, pixels)`` of every boundary metric of the module."""
    metrics = [m for m in module.modules() if isinstance(m, BoundaryIoU)] + [module.test_per_image_scores]
    return {(metric.dilation_ratio, metric.band_pixels) for metric in metrics}


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ([], {(0.02, None)}),
        (["model.boundary_dilation_ratio=0.05"], {(0.05, None)}),
        (["model.boundary_width=2"], {(0.02, 2)}),  # the ratio is unused when the band is in pixels
    ],
)
def test_the_band_reaches_every_boundary_metric_and_survives_a_checkpoint(train_config, overrides, expected):
    cfg = train_config(*overrides)
    module = build_module(cfg.model, instantiate(cfg.data))
    assert bands(module) == expected
    rebuilt = SegmentationModule(**module.hparams)  # what loading a checkpoint does
    assert bands(rebuilt) == expected


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.boundary_width=2", "model.boundary_dilation_ratio=0.01"], r"both set the boundary band; keep one"),
        (["model.boundary_width=0"], r"model.boundary_width must be a positive int \(the band in pixels"),
    ],
)
def test_a_band_set_twice_or_wrong_is_one_error(train_config, overrides, message):
    cfg = train_config(*overrides)
    with pytest.raises(ConfigError, match=message):
        build_module(cfg.model, instantiate(cfg.data))
