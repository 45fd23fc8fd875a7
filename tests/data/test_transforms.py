"""The albumentations pipelines keep image and mask aligned, pad masks with ignore_index, never invent mask values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

IGNORE = 255
# Class c is painted in COLOURS[c]; the crop's padding is black (an image is padded with 0).
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
PADDING = np.zeros(3)


def blocky_mask(height: int, width: int, values: list[int], block: int, seed: int = 0) -> np.ndarray:
    """``H×W`` mask of ``block``-pixel squares of random ``values``: many boundaries in every direction."""
    rng = np.random.default_rng(seed)
    cells = rng.choice(values, size=(-(-height // block), -(-width // block)))
    return np.kron(cells, np.ones((block, block), dtype=np.int64))[:height, :width].astype(np.int64)


def pixels(image: torch.Tensor) -> np.ndarray:
    """A normalised ``3×H×W`` tensor back to ``H×W×3`` values in 0–255."""
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    return (image.permute(1, 2, 0).numpy() * std + mean) * 255


def uniform_neighbourhood(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3×3 neighbourhood has one mask value: away from class edges, where bilinear image resampling
    blends colours, and off the crop's border, which may blend with what the crop cut off."""
    padded = np.pad(mask, 1, constant_values=-1)
    height, width = mask.shape
    same = np.ones_like(mask, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy : dy + height, dx : dx + width] == mask
    return same


@pytest.mark.parametrize("color_jitter", [0.0, 0.2])
def test_train_pipeline_keeps_image_and_mask_aligned_and_pads_masks_with_ignore_index(color_jitter):
    mask = blocky_mask(40, 56, [0, 1, 2], block=6)
    transform = train_transform(crop_size=32, ignore_index=IGNORE, color_jitter=color_jitter)  # scale, crop, flip
    transform.set_random_seed(0)
    references = np.concatenate([COLOURS, PADDING[None]]).astype(float)
    labels = np.array([0, 1, 2, IGNORE])
    padded_runs = 0
    for _ in range(150):
        out = transform(image=COLOURS[mask], mask=mask)
        out_image, out_mask = pixels(out["image"]), out["mask"].numpy()
        assert out_image.shape == (32, 32, 3) and out_mask.shape == (32, 32)
        distance = np.linalg.norm(out_image[:, :, None] - references, axis=-1)
        nearest = labels[distance.argmin(-1)]  # colour says class, black says padding
        interior = uniform_neighbourhood(out_mask)
        # Also edge pixels whose colour is still clearly one class's: a mask off by one pixel fails here.
        inside_crop = np.pad(np.ones((30, 30), dtype=bool), 1)
        clear = inside_crop & (distance.min(-1) < 0.2 * 255)
        assert interior.sum() > 0.2 * interior.size
        checked = interior | clear
        assert np.array_equal(nearest[checked], out_mask[checked])
        padded_runs += bool((out_mask == IGNORE).any())
    assert padded_runs > 10  # scales below 0.8 shrink the 40×56 image below the 32×32 crop


def test_padding_of_a_small_image_is_ignore_index_and_covers_exactly_the_missing_pixels():
    mask = blocky_mask(20, 28, [0, 1, 2], block=4)
    transform = train_transform(crop_size=32, ignore_index=IGNORE, scale_range=(1.0, 1.0), color_jitter=0.0)
    out = transform(image=COLOURS[mask], mask=mask)
    out_mask = out["mask"].numpy()
    assert (out_mask != IGNORE).sum() == mask.size
    assert (out_mask == IGNORE).sum() == 32 * 32 - mask.size
    assert np.allclose(pixels(out["image"])[out_mask == IGNORE], 0, atol=1e-3)


@pytest.mark.parametrize("ignore_index", [255, -1, 1000])
def test_masks_are_only_resampled_with_nearest_neighbour(ignore_index):
    values = [0, 3, 7]
    mask = blocky_mask(40, 56, values, block=1, seed=1)  # a fine pattern: interpolation would mix values
    image = np.random.default_rng(0).integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    train = train_transform(crop_size=48, ignore_index=ignore_index, scale_range=(0.3, 2.5))
    train.set_random_seed(0)
    seen: set[int] = set()
    for _ in range(40):
        out_mask = train(image=image, mask=mask)["mask"]
        assert out_mask.dtype in (torch.int32, torch.int64)
        seen |= set(np.unique(out_mask.numpy()).tolist())
    assert seen == {*values, ignore_index}
    for size in (24, 97, (33, 71)):
        resized = eval_transform(size)(image=image, mask=mask)["mask"].numpy()
        assert set(np.unique(resized).tolist()) == set(values)


def test_eval_at_full_resolution_keeps_mask_values_exactly():
    mask = blocky_mask(48, 36, [0, 1, 2, IGNORE], block=3)
    image = COLOURS[np.where(mask == IGNORE, 0, mask)]
    out = eval_transform(None)(image=image, mask=mask)
    assert out["image"].shape == (3, 48, 36) and out["image"].dtype == torch.float32
    assert np.array_equal(out["mask"].numpy(), mask)
    assert np.allclose(pixels(out["image"]), image, atol=1e-3)


def test_eval_size_sets_the_longer_side_or_the_exact_size():
    mask = blocky_mask(48, 36, [0, 1], block=3)
    image = COLOURS[mask]
    assert eval_transform(24)(image=image, mask=mask)["mask"].shape == (24, 18)
    assert eval_transform((20, 30))(image=image, mask=mask)["image"].shape == (3, 20, 30)
