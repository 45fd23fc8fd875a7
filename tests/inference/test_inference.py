"""Sliding-window inference and test-time augmentation against independent references: windows cover the image
flush with its borders; one window (crop ≥ image) is whole-image inference exactly; blended windows equal a float64
loop over windows and pixels; flips and scales average what they should; bad settings are one error naming the key."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from upseg.errors import ConfigError
from upseg.inference import InferenceSettings, infer_logits, sliding_window_logits, window_starts, window_weights
from upseg.models import build_network


def tiny_unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network("unet", 3, {"name": "bilinear"}, depth=2, base_width=4).eval()


@pytest.mark.parametrize("size,window,stride", [(10, 4, 2), (10, 4, 3), (8, 4, 4), (5, 8, 2), (7, 7, 1), (33, 16, 5)])
def test_windows_cover_every_pixel_and_end_flush_with_the_border(size, window, stride):
    starts = window_starts(size, window, stride)
    width = min(window, size)
    covered = torch.zeros(size, dtype=torch.int64)
    for start in starts:
        assert start >= 0 and start + width <= size
        covered[start : start + width] += 1
    assert (covered > 0).all()
    assert starts[0] == 0 and starts[-1] + width == size
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("blend", ["uniform", "gaussian"])
@pytest.mark.parametrize("crop", [(37, 53), (40, 64), (512, 512)])
def test_a_window_as_large_as_the_image_is_whole_image_inference_exactly(blend, crop):
    net = tiny_unet()
    images = torch.randn(2, 3, 37, 53)
    with torch.no_grad():
        whole = net(images)
        slide = infer_logits(net, images, InferenceSettings(mode="slide", crop=list(crop), blend=blend))
    assert torch.equal(slide, whole)


def loop_reference(network, images, crop, stride, blend):
    """Float64: every window's logits added pixel by pixel with its weight, divided by the summed weights."""
    _, _, height, width = images.shape
    window = (min(crop[0], height), min(crop[1], width))
    weights = window_weights(*window, blend).double()
    total = torch.zeros(images.shape[0], 3, height, width, dtype=torch.float64)
    norm = torch.zeros(height, width, dtype=torch.float64)
    for top in window_starts(height, window[0], stride[0]):
        for left in window_starts(width, window[1], stride[1]):
            logits = network(images[..., top : top + window[0], left : left + window[1]])
            for i in range(window[0]):
                for j in range(window[1]):
                    total[..., top + i, left + j] += weights[i, j] * logits[..., i, j]
                    norm[top + i, left + j] += weights[i, j]
    return total / norm


@pytest.mark.parametrize("blend", ["uniform", "gaussian"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_blended_windows_equal_a_loop_over_windows_and_pixels(blend, batch_size):
    net = tiny_unet().double()
    images = torch.randn(2, 3, 14, 19, dtype=torch.float64)
    with torch.no_grad():
        expected = loop_reference(net, images, (8, 12), (4, 5), blend)
        actual = sliding_window_logits(net, images, (8, 12), (4, 5), blend, batch_size)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_gaussian_weights_peak_at_the_centre_with_sigma_an_eighth_of_the_side():
    weights = window_weights(9, 17, "gaussian").double()
    assert weights.argmax().item() == 4 * 17 + 8 and weights.max().item() == pytest.approx(1.0)
    # One axis: exp(-((x - c) / σ)² / 2) with σ = side / 8.
    row = weights[4]
    expected = torch.exp(-0.5 * ((torch.arange(17.0) - 8) / (17 / 8)) ** 2).double()
    torch.testing.assert_close(row, expected, rtol=1e-6, atol=1e-7)
    assert torch.equal(window_weights(3, 4, "uniform"), torch.ones(3, 4))


def test_a_pointwise_network_gives_the_whole_image_logits_in_any_windows():
    # A 1×1 convolution sees no context: every window's logit of a pixel is the whole image's, so any blend is exact.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 1).double()
    images = torch.randn(1, 3, 29, 31, dtype=torch.float64)
    with torch.no_grad():
        for blend in ("uniform", "gaussian"):
            blended = sliding_window_logits(conv, images, (8, 12), (3, 5), blend, 2)
            torch.testing.assert_close(blended, conv(images), rtol=1e-12, atol=1e-12)


def test_flip_averages_the_image_and_its_mirror():
    net = tiny_unet()
    images = torch.randn(1, 3, 20, 27)
    with torch.no_grad():
        expected = (net(images) + net(images.flip(-1)).flip(-1)) / 2
        actual = infer_logits(net, images, InferenceSettings(flip=True))
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
        pointwise = torch.nn.Conv2d(3, 4, 1)  # commutes with the mirror: flipping changes nothing
        torch.testing.assert_close(
            infer_logits(pointwise, images, InferenceSettings(flip=True)), pointwise(images), rtol=1e-6, atol=1e-6
        )


def test_scales_average_passes_resized_back_to_the_image():
    net = tiny_unet()
    images = torch.randn(1, 3, 24, 30)
    with torch.no_grad():
        half = F.interpolate(images, size=(12, 15), mode="bilinear", align_corners=False)
        back = F.interpolate(net(half), size=(24, 30), mode="bilinear", align_corners=False)
        expected = (back + net(images)) / 2
        actual = infer_logits(net, images, InferenceSettings(scales=[0.5, 1.0]))
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
        torch.testing.assert_close(infer_logits(net, images, InferenceSettings()), net(images), rtol=0, atol=0)


@pytest.mark.parametrize(
    "settings,key",
    [
        ({"mode": "sliding"}, "inference.mode"),
        ({"crop": 0}, "inference.crop"),
        ({"crop": 20000}, "inference.crop"),
        ({"crop": [16, 16, 16]}, "inference.crop"),
        ({"crop": 16, "stride": 0}, "inference.stride"),
        ({"crop": 16, "stride": -4}, "inference.stride"),
        ({"crop": 16, "stride": 17}, "inference.stride"),
        ({"crop": [16, 32], "stride": [8, 33]}, "inference.stride"),
        ({"scales": [1.0, 0]}, "inference.scales"),
        ({"blend": "cosine"}, "inference.blend"),
        ({"batch_size": 0}, "inference.batch_size"),
    ],
)
def test_a_bad_setting_is_one_error_naming_its_key(settings, key):
    with pytest.raises(ConfigError, match=rf"^{key}"):
        InferenceSettings(**settings)


def test_a_crop_the_network_would_pad_is_refused_with_multiples_to_use():
    with pytest.raises(ConfigError, match=r"inference.crop=100 is not a multiple of 8, .*use e.g. 96 or 104"):
        InferenceSettings(mode="slide", crop=100).check_for(8)
    InferenceSettings(mode="slide", crop=[96, 104]).check_for(8)
    InferenceSettings(mode="whole", crop=100).check_for(8)  # whole images take no windows
