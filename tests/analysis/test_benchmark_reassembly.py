"""The benchmark's before/after variants of CARAFE's and FADE's reassembly: one per forced path, each building and
running, and the memory-lean path's tensor peak and process peak below the unfold path's (which holds the
neighbourhood copy)."""

from __future__ import annotations

import torch

from upseg.analysis.benchmark import (
    Shape,
    default_variants,
    known_variants,
    process_peak_rss_mib,
    reassembly_variants,
    resident_high_water_mib,
    run_benchmark,
)
from upseg.upsample.ops.reassembly import IMPLS


def test_each_forced_reassembly_path_is_a_variant_beside_the_default_ones():
    labels = [variant.label for variant in reassembly_variants()]
    forced = [impl for impl in IMPLS if impl != "auto"]
    assert labels == [f"{name}[{impl}]" for name in ("carafe", "fade") for impl in forced]
    assert [v.label for v in known_variants()] == [v.label for v in default_variants()] + labels
    assert not set(labels) & {v.label for v in default_variants()}  # the default run is unchanged


def test_before_and_after_rows_have_the_same_cost_but_not_the_same_peak():
    variants = [v for v in known_variants() if v.label in ("transpose", "carafe[unfold]", "carafe[torch]")]
    variants += [v for v in reassembly_variants() if v.label in ("fade[unfold]", "fade[torch]")]
    rows = {row.variant: row for row in run_benchmark([Shape(16, 8, 16)], variants, batch=1, repeats=1, warmup=0)}
    assert set(rows) == {v.label for v in variants}
    for name in ("carafe", "fade"):
        before, after = rows[f"{name}[unfold]"], rows[f"{name}[torch]"]
        assert (after.parameters, after.gflops) == (before.parameters, before.gflops)
        assert after.peak_mib < before.peak_mib and after.median_ms > 0


def test_a_fresh_process_of_the_lean_path_holds_less_than_the_neighbourhood_copy_the_unfold_path_keeps():
    # CARAFE reassembles C_out channels (it projects first): 2×32×25×128² float32 = 100 MiB of neighbourhoods, which
    # the unfold path keeps for the backward pass. Each process also holds torch itself, alike in both.
    shape, batch = Shape(64, 32, 128), 2
    copy_mib = batch * shape.out_channels * 25 * shape.size**2 * 4 / 2**20
    variants = {v.label: v for v in reassembly_variants()}
    before = process_peak_rss_mib(shape, variants["carafe[unfold]"], batch=batch, dtype=torch.float32)
    after = process_peak_rss_mib(shape, variants["carafe[torch]"], batch=batch, dtype=torch.float32)
    assert after > 100  # torch alone is more: the number is this process's, not a stub
    assert before - after > 0.5 * copy_mib


def test_the_fresh_process_peak_is_its_own_not_its_parents():
    ballast = torch.ones(600 * 2**20 // 4)  # 600 MiB resident here, in the parent, while the child runs
    ballast.add_(1)
    variant = next(v for v in default_variants() if v.label == "transpose")
    child = process_peak_rss_mib(Shape(8, 4, 8), variant, batch=1, dtype=torch.float32)
    parent = resident_high_water_mib()
    assert child < parent - 300, (child, parent)
