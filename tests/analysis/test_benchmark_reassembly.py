"""The benchmark's before/after variants of CARAFE's and FADE's reassembly: one per forced path, each building and
running, and the memory-lean path's tensor peak below the unfold path's (which holds the neighbourhood copy)."""

from __future__ import annotations

from upseg.analysis.benchmark import Shape, default_variants, known_variants, reassembly_variants, run_benchmark
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
