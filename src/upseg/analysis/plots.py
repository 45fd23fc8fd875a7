"""The picture of a sweep comparison: accuracy against cost per decoder, and validation curves.

Matplotlib with the non-interactive Agg backend, so it renders on machines without a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from upseg.analysis.comparison import Comparison  # noqa: E402


def plot_comparison(comparison: Comparison, path: Path) -> None:
    """Test mIoU and boundary IoU (final weights) against GFLOPs per decoder — the mean over seeds with its bootstrap
    interval, or ± one standard deviation where there are no per-image scores — and mean validation mIoU per epoch."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, key, label in zip(axes[:2], ("test/mIoU", "test/bIoU"), ("mIoU final", "bIoU final"), strict=True):
        intervals = comparison.intervals.get(label, {})
        for index, entry in enumerate(comparison.table):
            if entry[key] is None or entry["gflops"] is None:
                continue
            mean, std = entry[key]
            interval = intervals.get(entry["decoder"])
            low, high = (mean - interval.low, interval.high - mean) if interval else (std, std)
            ax.errorbar(
                entry["gflops"][0],
                mean,
                yerr=[[low], [high]],
                fmt="o",
                capsize=4,
                color=f"C{index % 10}",
                label=entry["decoder"],
            )
            ax.annotate(entry["decoder"], (entry["gflops"][0], mean), textcoords="offset points", xytext=(5, 4))
        ax.set_xlabel("GFLOPs per image (forward)")
        ax.set_ylabel(f"test {label.split()[0]}")
        ax.set_title(f"test {label} vs cost (mean over seeds, 95% interval)")
    curves = axes[2]
    for decoder, curve in comparison.curves.items():
        if curve:
            curves.plot(list(curve), list(curve.values()), marker="o", label=decoder)
    curves.set_xlabel("epoch")
    curves.set_ylabel("val mIoU (mean over seeds)")
    curves.set_title("validation mIoU per epoch")
    if curves.lines:
        curves.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
