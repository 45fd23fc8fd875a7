"""Albumentations pipelines: ``(image H×W×3 uint8, mask H×W int)`` → ``(image 3×H'×W' float32, mask H'×W' int64)``.

Train: random scale, pad to ``crop_size`` (image with 0, mask with ``ignore_index``), random crop, horizontal flip,
mild colour jitter, normalise, to tensor. Eval: optional resize to ``eval_size``, normalise, to tensor. Masks are only
ever resampled with nearest neighbour, so their values stay exact — OpenCV's pixel-centre-aligned variant, so that a
mask stays on its image.
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# cv2.INTER_NEAREST samples at x·scale without the half-pixel centre offset INTER_LINEAR uses, which moves a rescaled
# mask by up to a pixel against its image; INTER_NEAREST_EXACT samples pixel centres, as the image resampling does.
MASK_INTERPOLATION = cv2.INTER_NEAREST_EXACT


def train_transform(
    crop_size: int | Sequence[int] | None,
    ignore_index: int,
    scale_range: Sequence[float] = (0.5, 2.0),
    hflip: bool = True,
    color_jitter: float = 0.2,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Training augmentation; ``crop_size=None`` skips scale/pad/crop (images keep their size)."""
    ops: list[A.BasicTransform] = []
    if crop_size is not None:
        crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        low, high = scale_range
        ops += [
            A.RandomScale(
                scale_limit=(low - 1, high - 1),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=MASK_INTERPOLATION,
                p=1.0,
            ),
            A.PadIfNeeded(crop_h, crop_w, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore_index),
            A.RandomCrop(crop_h, crop_w),
        ]
    if hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0:
        j = color_jitter
        ops.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(0.05, j / 4), p=0.5))
    ops += [A.Normalize(mean=mean, std=std), ToTensorV2()]
    return A.Compose(ops)


def eval_transform(
    eval_size: int | Sequence[int] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Evaluation: full resolution unless ``eval_size`` (an int for the longer side, or ``(H, W)``) is given."""
    ops: list[A.BasicTransform] = []
    if isinstance(eval_size, int):
        ops.append(A.LongestMaxSize(max_size=eval_size, mask_interpolation=MASK_INTERPOLATION))
    elif eval_size is not None:
        height, width = eval_size
        ops.append(A.Resize(height, width, mask_interpolation=MASK_INTERPOLATION))
    ops += [A.Normalize(mean=mean, std=std), ToTensorV2()]
    return A.Compose(ops)
