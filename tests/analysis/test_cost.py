"""upseg.analysis.cost against counts worked out by hand: FLOPs of the upsamplers' arithmetic and the peak of live
tensors."""

from __future__ import annotations

import torch

from upseg.analysis.cost import TensorMemoryPeak, forward_flops, parameter_count, peak_tensor_bytes
from upseg.upsample import build_upsampler

N, C_IN, C_OUT, H, W, S = 2, 8, 4, 6, 5, 2
OUT_PIXELS = N * (S * H) * (S * W)


def conv_flops(c_in: int, c_out: int, k: int, pixels: int) -> int:
    """2 per multiply-add: every output value of a k×k convolution sums c_in·k² products."""
    return 2 * c_out * c_in * k * k * pixels


def test_transposed_convolution_counts_every_tap_once():
    layer = build_upsampler("transpose", C_IN, C_OUT, S)  # kernel 4, stride 2: each input pixel feeds 4×4 outputs
    assert forward_flops(layer, torch.randn(N, C_IN, H, W)) == 2 * N * H * W * C_IN * C_OUT * 16


def test_bilinear_resize_conv_counts_the_interpolation_too():
    layer = build_upsampler("bilinear", C_IN, C_OUT, S)
    expected = 8 * C_IN * OUT_PIXELS + conv_flops(C_IN, C_OUT, 3, OUT_PIXELS)
    assert forward_flops(layer, torch.randn(N, C_IN, H, W)) == expected


def test_carafe_counts_its_kernel_prediction_and_reassembly():
    layer = build_upsampler("carafe", C_IN, C_OUT, S, up_kernel=3, compressed_channels=16)
    low = N * H * W
    expected = (
        conv_flops(C_IN, C_OUT, 1, low)  # projection, at the low resolution
        + conv_flops(C_IN, 16, 1, low)  # compressor
        + conv_flops(16, S * S * 9, 3, low)  # content encoder
        + 2 * C_OUT * 9 * OUT_PIXELS  # reassembly: 9 taps per output value
    )
    assert forward_flops(layer, torch.randn(N, C_IN, H, W)) == expected


def test_dysample_counts_its_offsets_and_sampling():
    layer = build_upsampler("dysample", C_IN, C_OUT, S, groups=2)
    low = N * H * W
    expected = conv_flops(C_IN, C_OUT, 1, low) + conv_flops(C_IN, 2 * 2 * S * S, 1, low) + 8 * C_OUT * OUT_PIXELS
    assert forward_flops(layer, torch.randn(N, C_IN, H, W)) == expected


def test_parameter_count():
    layer = build_upsampler("transpose", C_IN, C_OUT, S)
    assert parameter_count(layer) == C_IN * C_OUT * 16 + C_OUT


def test_peak_counts_the_tensors_alive_at_once():
    def step() -> None:
        first = torch.ones(1024)  # 4 KiB
        second = torch.ones(2048)  # 8 KiB; with the first: 12 KiB
        del first
        third = torch.ones(512)  # 2 KiB; with the second: 10 KiB
        del second, third

    assert peak_tensor_bytes(step) == 12 * 1024


def test_peak_ignores_tensors_made_before_and_counts_views_once():
    before = torch.ones(4096)
    with TensorMemoryPeak() as memory:
        view = before[::2].reshape(32, 64)  # no new storage
        copy = view.contiguous()  # 8 KiB
        copy.t()
    assert memory.peak_bytes == 8 * 1024
