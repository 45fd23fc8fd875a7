"""The benchmark's functions on the CPU at a tiny shape: one row per upsampler, positive times, a table."""

from __future__ import annotations

import json

import pytest
import torch

from upseg.analysis.benchmark import (
    Shape,
    cost_markdown,
    default_variants,
    parse_shape,
    run_benchmark,
    to_markdown,
    write_results,
)
from upseg.upsample import UPSAMPLERS
from upseg.upsample.ops.direct_conv import IMPLS


def test_every_upsampler_gets_a_row_with_a_positive_time(tmp_path):
    rows = run_benchmark([Shape(8, 4, 8)], batch=1, repeats=1, warmup=0, device="cpu")
    labels = [row.variant for row in rows]
    assert labels == [v.label for v in default_variants()]
    assert set(labels) == (set(UPSAMPLERS) - {"direct"}) | {f"direct[{impl}]" for impl in IMPLS}
    for row in rows:
        assert row.median_ms > 0 and row.times_ms and row.ratio is not None and row.ratio > 0
        assert row.peak_mib is not None and row.peak_mib > 0 and row.cuda_peak_mib is None  # no CUDA here
        assert row.parameters > 0 and row.gflops > 0
        assert row.cpu_ms is not None and row.cpu_ms >= 0 and row.sys_ms is not None
        assert (row.batch, row.dtype, row.device, row.shape) == (1, "float32", "cpu", "8→4 @ 8²")
    assert next(row for row in rows if row.variant == "transpose").ratio == 1.0

    table = to_markdown(rows)
    assert table.count("\n") == len(rows) + 2 and "| direct[subpixel] |" in table
    json_path, markdown_path = write_results(rows, tmp_path, {"device": "cpu"})
    assert len(json.loads(json_path.read_text())["rows"]) == len(rows)
    markdown = markdown_path.read_text()
    assert table in markdown and to_markdown(rows, cpu_time=True) in markdown
    assert "| carafe |" in cost_markdown(rows) and cost_markdown(rows) in markdown


def test_bf16_runs_too():
    rows = run_benchmark([Shape(8, 4, 8)], batch=1, dtypes=[torch.bfloat16], repeats=1, warmup=0, device="cpu")
    assert all(row.dtype == "bfloat16" and row.median_ms > 0 for row in rows)


def test_shapes_parse_from_the_command_line_form():
    assert parse_shape("512x256@32") == Shape(512, 256, 32)
    with pytest.raises(ValueError, match="C_inxC_out@H"):
        parse_shape("512-256")


def test_unet_training_throughput_has_a_row_per_decoder(tmp_path):
    from upseg.analysis.benchmark import throughput_markdown, unet_throughput

    rows = unet_throughput(batch=2, size=16, depth=2, base_width=4, num_classes=3, repeats=1, warmup=0)
    assert [row.variant for row in rows] == [v.label for v in default_variants()]
    for row in rows:
        assert row.images_per_second > 0 and row.step_ms > 0 and row.parameters > 0
    assert next(row for row in rows if row.variant == "transpose").ratio == 1.0
    # direct has transpose's parameters whatever its impl
    assert len({row.parameters for row in rows if row.variant.startswith(("direct", "transpose"))}) == 1
    assert throughput_markdown(rows).count("\n") == len(rows) + 2
    _, markdown_path = write_results([], tmp_path, {"device": "cpu"}, rows)
    assert "U-Net training steps" in markdown_path.read_text()
