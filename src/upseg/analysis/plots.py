"""The picture of a sweep comparison: accuracy against cost per decoder, and validation curves; for a sweep of several
groups (architectures), each decoder's difference to the baseline per group, with its interval.

Matplotlib with the non-interactive Agg backend, so it renders on machines without a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from upseg.analysis.comparison import DIFFERENCES, Comparison, SweepComparison  # noqa: E402

GROUP_PANELS = ("ΔmIoU final", "ΔbIoU final", "Δclass-1 Dice final")  # the final weights' paired differences


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


def plot_group_differences(sweep: SweepComparison, path: Path) -> None:
    """One panel per headline difference (final weights): per decoder, each group's difference to the baseline with
    its paired bootstrap interval, groups side by side, and the zero line."""
    labels = [label for _, _, label, _, _ in DIFFERENCES if label in GROUP_PANELS]
    labels = [label for label in labels if any(label in part.differences for part in sweep.groups.values())]
    decoders = [d for d in dict.fromkeys(entry["decoder"] for entry in sweep.table) if d != sweep.baseline]
    fig, axes = plt.subplots(1, max(1, len(labels)), figsize=(5.5 * max(1, len(labels)), 4.8), squeeze=False)
    width = 0.8 / max(1, len(sweep.groups))
    for ax, label in zip(axes[0], labels, strict=False):
        for index, (group, part) in enumerate(sweep.groups.items()):
            intervals = part.differences.get(label, {})
            points = [(i, intervals[d]) for i, d in enumerate(decoders) if d in intervals]
            if not points:
                continue
            x = [i - 0.4 + width * (index + 0.5) for i, _ in points]
            y = [interval.estimate for _, interval in points]
            low = [interval.estimate - interval.low for _, interval in points]
            high = [interval.high - interval.estimate for _, interval in points]
            ax.errorbar(x, y, yerr=[low, high], fmt="o", capsize=3, color=f"C{index % 10}", label=group or "all")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(decoders)), decoders, rotation=30, ha="right")
        ax.set_ylabel(f"{label} (decoder − {sweep.baseline})")
        ax.set_title(f"{label}: mean over seeds, 95% paired interval")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
