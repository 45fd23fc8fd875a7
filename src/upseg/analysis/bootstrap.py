"""Bootstrap confidence intervals for decoder comparisons, resampling test images and seeds.

A run's score is pooled over the test images: per class ``IoU_c = Σ_i I_ic / Σ_i U_ic`` (``I``, ``U``: the per-image
intersection and union counts of :mod:`upseg.metrics.results`), averaged over the classes with ``Σ_i U_ic > 0``. On
two-class data (vessel or membrane against background) the customary score is the Dice of class 1,
``2 Σ_i I_i1 / (Σ_i U_i1 + Σ_i I_i1)``, which is ``2TP / (2TP + FP + FN)`` since ``U = TP + FP + FN`` and ``I = TP``.
A decoder's score is the mean of its runs' (seeds') scores.

One bootstrap replicate draws the test images with replacement — **the same draw for every decoder**, so the
comparison is paired on images — and the seeds with replacement: when every decoder ran the same seeds, one draw of
seeds for all of them (paired on seeds too: runs with the same seed share the data order, the augmentation and the
encoder's initial weights, so their scores move together), otherwise an independent draw per decoder. It recomputes
every score on that draw. An image drawn ``k`` times counts ``k`` times, so a replicate's pooled counts are ``w @ I``
with ``w`` the image multiplicities. The interval of a difference ``decoder − baseline`` is the percentile interval of
the replicates' differences; it holds both sources of noise the comparison faces: which test images happen to be in
the test set, and which seeds.

Across architectures (a sweep of U-Net and a pyramid head, say), every (architecture, decoder) cell is drawn on the
same replicates, and the **interaction** of a decoder ``d`` with architectures ``a`` and ``b`` — how much its gain
over the baseline ``t`` changes, ``Δ(d − t | b) − Δ(d − t | a)`` — gets the percentile interval of that difference
of differences over the replicates (:func:`interaction`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def pooled_miou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Mean IoU over the last axis (classes) of pooled counts ``…×C``, leaving out classes whose union is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / np.maximum(union, 1), np.nan)
    present = (union > 0).sum(-1)
    return np.where(present > 0, np.nansum(iou, -1) / np.maximum(present, 1), np.nan)


def pooled_positive_dice(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Dice of class 1 of two-class pooled counts ``…×2``; NaN where class 1 is neither predicted nor present."""
    if intersection.shape[-1] != 2:
        raise ValueError(f"the Dice of class 1 needs two-class counts, got {intersection.shape[-1]} classes")
    tp, union_1 = intersection[..., 1], union[..., 1]
    return np.where(union_1 > 0, 2 * tp / np.maximum(union_1 + tp, 1), np.nan)


# A score of pooled counts: (intersection …×C, union …×C) → …
Score = Callable[[np.ndarray, np.ndarray], np.ndarray]


def image_weights(images: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples×images`` multiplicities of images drawn with replacement (each row sums to ``images``)."""
    return rng.multinomial(images, np.full(images, 1.0 / images), size=samples)


def run_replicates(
    intersection: np.ndarray, union: np.ndarray, weights: np.ndarray, score: Score = pooled_miou
) -> np.ndarray:
    """One run's pooled score (``images×C`` counts) on every replicate's draw of images: ``samples`` values."""
    return score(weights @ intersection, weights @ union)


def seed_means(replicates: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """``runs×samples`` replicate scores and ``samples×k`` drawn run numbers → per replicate, the mean over the
    drawn runs."""
    return replicates[drawn, np.arange(len(drawn))[:, None]].mean(1)


def percentile_interval(estimate: float, values: np.ndarray, confidence: float) -> Interval:
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


@dataclass(frozen=True)
class DecoderCounts:
    """The per-image counts of one decoder's runs, images in the same order for every decoder."""

    intersection: Sequence[np.ndarray]  # one images×C array per run
    union: Sequence[np.ndarray]
    seeds: Sequence[int] | None = None  # of the runs, in the same order; None: unknown (never paired)
    score: Score = pooled_miou

    def scores(self) -> np.ndarray:
        return np.array([self.score(i.sum(0), u.sum(0)) for i, u in zip(self.intersection, self.union, strict=True)])

    def per_run_replicates(self, weights: np.ndarray) -> np.ndarray:
        """``runs×samples``: each run's score on each replicate's draw of images, runs in order of seed."""
        order = np.argsort(self.seeds) if self.seeds is not None else np.arange(len(self.intersection))
        return np.stack([run_replicates(self.intersection[i], self.union[i], weights, self.score) for i in order])


def replicate_cells(
    cells: Mapping[Key, DecoderCounts], samples: int = 2000, seed: int = 0
) -> tuple[dict[Key, float], dict[Key, np.ndarray]]:
    """Per cell (a decoder, or a decoder in one architecture), its estimate — the mean over its runs of each run's
    pooled score — and its ``samples`` bootstrap replicates, every cell on the same draws: one draw of images per
    replicate for all, and one of seed positions when every cell ran the same seeds (else one per cell)."""
    rng = np.random.default_rng(seed)
    images = {len(counts.intersection[0]) for counts in cells.values()}
    if len(images) != 1:
        raise ValueError(f"every decoder must be scored on the same test images, got image counts {sorted(images)}")
    weights = image_weights(images.pop(), samples, rng)
    seed_sets = {tuple(sorted(counts.seeds)) if counts.seeds is not None else None for counts in cells.values()}
    common = next(iter(seed_sets)) if len(seed_sets) == 1 else None
    # The same seeds everywhere: one draw of seed positions for every cell (paired); else one per cell.
    shared = rng.integers(0, len(common), size=(samples, len(common))) if common else None
    replicates = {}
    for name, counts in cells.items():
        runs = len(counts.intersection)
        drawn = shared if shared is not None else rng.integers(0, runs, size=(samples, runs))
        replicates[name] = seed_means(counts.per_run_replicates(weights), drawn)
    estimates = {name: float(np.mean(counts.scores())) for name, counts in cells.items()}
    return estimates, replicates


def compare_decoders(
    decoders: dict[str, DecoderCounts],
    baseline: str,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """Per decoder, the interval of its mean score, and the interval of its difference to ``baseline`` (paired on
    images; the baseline's own difference is 0). All decoders share one draw of images per replicate."""
    estimates, replicates = replicate_cells(decoders, samples, seed)
    own = {name: percentile_interval(estimates[name], replicates[name], confidence) for name in decoders}
    difference = {
        name: percentile_interval(
            estimates[name] - estimates[baseline], replicates[name] - replicates[baseline], confidence
        )
        for name in decoders
    }
    return own, difference


def interaction(
    estimates: Mapping[Key, float],
    replicates: Mapping[Key, np.ndarray],
    decoder: tuple[Key, Key],
    baseline: tuple[Key, Key],
    confidence: float = 0.95,
) -> Interval:
    """How much a decoder's gain over the baseline changes between two architectures: with cells ``decoder = (d_a,
    d_b)`` and ``baseline = (b_a, b_b)`` of architectures ``a`` and ``b``, ``(d_b − b_b) − (d_a − b_a)`` and its
    percentile interval over replicates drawn jointly (:func:`replicate_cells`: paired on images and seeds)."""
    (d_a, d_b), (b_a, b_b) = decoder, baseline
    value = (estimates[d_b] - estimates[b_b]) - (estimates[d_a] - estimates[b_a])
    values = (replicates[d_b] - replicates[b_b]) - (replicates[d_a] - replicates[b_a])
    return percentile_interval(value, values, confidence)
