"""The rules that turn a dataset's :class:`~upseg.planning.fingerprint.Fingerprint` and the run's budget into
config values — each a :class:`Choice` of one config key, with the reason it was made. The README's "experiment=auto"
section states them; here is why, briefly:

- **Pixels per step.** A step costs about its pixel count. The device sets how many it can afford: ``P`` =
  8 × 96² on a CPU (the ``experiment=drive`` recipe's batch, about a third of a second a step on 2 cores), 16 × 256²
  on a GPU.
- **Crop and batch.** Thin structures (``thin_fraction ≥ 0.2``: most foreground pixels sit on a boundary) need
  little context and many different crops per step: crops of ``√(P/8)``, batches of 8. Objects need context: crops
  of ``√(P/4)`` with batches of 4 (BatchNorm wants at least that). A crop is a multiple of 32 and never larger than
  the median image's shorter side; images no larger than the crop train whole (``crop_size=null``), batched by
  ``P / (H·W)`` (rounded down to a multiple of 4, 4 to 32).
- **Scale range.** With crops only: ``[0.8, 1.25]`` for thin structures, whose width in pixels is itself a cue,
  ``[0.7, 1.4]`` (nnU-Net's) for objects. A short budget is better spent on the data than on strong augmentation.
- **Epoch length.** ``samples_per_epoch = max(images, steps · batch)`` with ``steps`` = 100, or, once a step has been
  timed, the steps that a fifth of ``trainer.max_time`` buys (at least 100, in fifties): about 5 validations a run, so
  that a small dataset is not validated after every few steps and validation takes little of the budget (the run's
  length is its time or ``max_epochs``, not this; the headline is the final weights).
- **Validation split**, where it is carved from the training images (``data.val_fraction``: no val folders, or a
  carve already configured): ``clamp(round(n / 10), 1, 100)`` images, so that a small dataset keeps ~90 % of its
  images for training; fewer than 3 images cannot be split.
- **Evaluation.** Whole images (``data.eval_size=null``) up to ``EVAL_PIXELS`` per image; larger ones in sliding windows
  (``inference.mode=slide``, :data:`SLIDING_WINDOW_KEY`), or resized to that many pixels where the config has no
  ``inference``. Images of several sizes are evaluated one at a time (``data.eval_batch_size=1``), so padding never
  changes boundary bands.
- **Loss.** With ``loss=ce_dice``: Dice on (``loss.dice_weight=1``) when a class has less than 20 % of the pixels or
  the structures are thin — Dice weights every class equally however few its pixels — else off, plain
  cross-entropy. Class weights stay off: with Dice they would count rare classes twice and over-predict them.
- **Loader workers.** On a CPU one (``data.num_workers=1``): it prepares the next batch while the main process trains;
  more would take cores from training. On a GPU the config's own (by default one per CPU, up to 8).
- **Caching.** Decoded images stay in memory (``data.cache=true``) when the whole training set, once per loader
  process, takes at most a quarter of the available memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from upseg.errors import DataError
from upseg.planning.fingerprint import Fingerprint

PIXELS_PER_STEP = {"cpu": 8 * 96**2, "cuda": 16 * 256**2}
THIN = 0.2  # thin_fraction from which structures count as thin
THIN_BATCH, OBJECT_BATCH = 8, 4
MIN_BATCH, MAX_BATCH = 4, 32
CROP_MULTIPLE = 32
SCALES = {"thin": [0.8, 1.25], "objects": [0.7, 1.4]}
STEPS_PER_EPOCH = 100  # at least, between validations
VALIDATIONS = 5  # a run with a time budget validates about this often
RARE = 0.2  # class frequency under which Dice is used
EVAL_PIXELS = {"cpu": 4 * 2**20, "cuda": 16 * 2**20}
CACHE_SHARE = 0.25  # of the available memory
# When the composed config has this key (train.yaml's inference group), images over EVAL_PIXELS are evaluated in
# sliding windows of inference.crop instead of being resized; a config without it keeps the resize.
SLIDING_WINDOW_KEY = "inference.mode"


@dataclass(frozen=True)
class Choice:
    key: str
    value: Any
    reason: str


@dataclass(frozen=True)
class Context:
    """What the plan knows besides the data: the device kind (``cpu`` or ``cuda``), the memory available
    (bytes), the loader processes, whether validation is carved from the training images, which config keys exist
    and the network's size multiple (its total stride: the smallest input it takes whole)."""

    device: str
    memory_bytes: int
    loader_processes: int
    carves_validation: bool
    min_input_size: int
    sliding_window: bool = False


def floor_multiple(value: float, multiple: int = CROP_MULTIPLE) -> int:
    return int(value // multiple * multiple)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def check_usable(fingerprint: Fingerprint, context: Context, where: str) -> None:
    """The bad inputs a plan cannot work around: too few images to carve a validation set from, images smaller than
    the network's minimum input."""
    if context.carves_validation and fingerprint.images < 3:
        raise DataError(
            f"{where} has {fingerprint.images} training image(s), too few to split into training and validation "
            "(at least 3); add images, or give validation folders (data.val.images, data.val.masks)"
        )
    if fingerprint.smallest_side < context.min_input_size:
        small = min(fingerprint.sizes, key=min)
        raise DataError(
            f"{where} has images as small as {small[0]}×{small[1]}, smaller than the network's minimum input "
            f"{context.min_input_size}×{context.min_input_size} (its total stride); use larger images or a "
            "shallower network (e.g. model.net.depth)"
        )


def crop_and_batch(fingerprint: Fingerprint, context: Context) -> list[Choice]:
    pixels = PIXELS_PER_STEP[context.device]
    thin = fingerprint.thin_fraction >= THIN
    kind = "thin structures" if thin else "objects"
    batch = THIN_BATCH if thin else OBJECT_BATCH
    height, width = fingerprint.median_size
    largest_crop = max(CROP_MULTIPLE, floor_multiple(math.sqrt(pixels / batch)))
    if max(height, width) <= largest_crop:
        batch = clamp(pixels // (height * width) // MIN_BATCH * MIN_BATCH, MIN_BATCH, MAX_BATCH)
        why = f"images of {height}×{width} fit a {largest_crop}-px crop: trained whole, {pixels:,} pixels a step"
        return [Choice("data.crop_size", None, why), Choice("data.batch_size", batch, why)]
    crop = max(CROP_MULTIPLE, min(largest_crop, floor_multiple(min(height, width))))
    why = f"{kind} (thin {fingerprint.thin_fraction:.2f}): {batch} crops of {crop} px, ≤ {pixels:,} pixels a step"
    scales = SCALES["thin" if thin else "objects"]
    return [
        Choice("data.crop_size", crop, why),
        Choice("data.batch_size", batch, why),
        Choice("data.scale_range", scales, f"{kind}: {'mild' if thin else 'moderate'} rescaling"),
    ]


def epoch_length(
    fingerprint: Fingerprint, batch: int, budget_seconds: float | None = None, seconds_per_step: float | None = None
) -> Choice:
    steps, why = STEPS_PER_EPOCH, f"≥ {STEPS_PER_EPOCH} steps between validations"
    if budget_seconds and seconds_per_step:
        budgeted = int(budget_seconds / seconds_per_step / VALIDATIONS) // 50 * 50
        if budgeted > steps:
            steps, why = budgeted, f"≈ {VALIDATIONS} validations in trainer.max_time at {seconds_per_step:.2f} s a step"
    return Choice("data.samples_per_epoch", max(fingerprint.images, steps * batch), why)


def validation_split(fingerprint: Fingerprint) -> Choice:
    count = clamp(round(fingerprint.images / 10), 1, 100)
    return Choice(
        "data.val_fraction",
        count / fingerprint.images,
        f"{count} of {fingerprint.images} training images validate, the rest train",
    )


def evaluation(fingerprint: Fingerprint, context: Context, crop: int | None) -> list[Choice]:
    limit = EVAL_PIXELS[context.device]
    choices = []
    if fingerprint.largest_pixels <= limit:
        choices.append(Choice("data.eval_size", None, "whole images fit: evaluated at full resolution"))
    elif context.sliding_window:
        choices.append(Choice(SLIDING_WINDOW_KEY, "slide", f"images over {limit:,} pixels: a sliding window"))
    else:
        side = int(math.sqrt(limit))
        choices.append(Choice("data.eval_size", side, f"images over {limit:,} pixels: resized to {side} px"))
    if not fingerprint.uniform_size:
        choices.append(Choice("data.eval_batch_size", 1, "images of several sizes: one at a time, no padding"))
    return choices


def loss(fingerprint: Fingerprint) -> Choice:
    rarest = min(fingerprint.frequencies)
    thin = fingerprint.thin_fraction >= THIN
    if rarest < RARE or thin:
        why = f"rarest class {rarest:.1%} of the pixels" + (", thin structures" if thin else "")
        return Choice("loss.dice_weight", 1.0, f"{why}: Dice weights every class equally")
    return Choice("loss.dice_weight", 0.0, f"every class has ≥ {RARE:.0%} of the pixels: cross-entropy alone")


def loader_workers(context: Context) -> Choice | None:
    if context.device != "cpu":
        return None
    return Choice("data.num_workers", 1, "a CPU: one loader process beside training, so training keeps the cores")


def caching(fingerprint: Fingerprint, context: Context, workers: int | None) -> Choice:
    processes = context.loader_processes if workers is None else max(1, workers)
    need = fingerprint.decoded_bytes * processes
    fits = need <= CACHE_SHARE * context.memory_bytes
    mib = need / 2**20
    why = f"{mib:,.0f} MiB decoded ({processes} loader process(es))"
    avail = f"{context.memory_bytes / 2**30:.1f} GiB available"
    return Choice("data.cache", fits, f"{why} {'≤' if fits else '>'} a quarter of {avail}")


def plan_choices(fingerprint: Fingerprint, context: Context, where: str) -> list[Choice]:
    """Every choice of the plan, in the order they are printed (see the module docstring for the rules)."""
    check_usable(fingerprint, context, where)
    choices = crop_and_batch(fingerprint, context)
    values = {choice.key: choice.value for choice in choices}
    choices.append(epoch_length(fingerprint, values["data.batch_size"]))
    if context.carves_validation:
        choices.append(validation_split(fingerprint))
    choices += evaluation(fingerprint, context, values["data.crop_size"])
    choices.append(loss(fingerprint))
    choices.append(Choice("loss.class_weights", None, "Dice already weighs rare classes up"))
    workers = loader_workers(context)
    choices += [workers] if workers is not None else []
    choices.append(caching(fingerprint, context, workers.value if workers is not None else None))
    return choices
