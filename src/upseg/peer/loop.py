"""The peer: what a user would write instead of upseg — segmentation_models.pytorch's ``Unet("resnet18")`` (from
scratch: no download) trained by a plain PyTorch loop — and its evaluation by upseg's own per-image counts.

The loop: random ``crop``-pixel crops (padded with ``ignore_index`` where an image is smaller), horizontal flips,
ImageNet normalisation (as upseg's), batches of ``batch``, Adam at a constant ``lr``, cross-entropy + smp's
multiclass Dice (both ignoring ``ignore_index``), epoch after epoch until ``seconds`` of wall-clock have passed
(checked after every step). Images are decoded once, before the clock starts, as upseg's planned recipe caches them.

Evaluation: every test image whole, one at a time, zero-padded at the right and bottom to a multiple of 32 (smp's
U-Net needs it) and the logits cropped back; the predictions go into :class:`upseg.metrics.PerImageScores` exactly as
upseg's test step does, so that both sides are scored by the same code on the same pixels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from albumentations.pytorch import ToTensorV2
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from upseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from upseg.errors import UpsegError
from upseg.metrics import PerImageScores

SMP_MULTIPLE = 32  # smp's encoders stride 32


@dataclass(frozen=True)
class PeerRecipe:
    """The peer loop's settings: what a user of segmentation_models.pytorch would pick without tuning (192 px: the
    size of the loop this benchmark was asked for, which trained on images squashed to 192²; here crops, so that
    both sides see the images at their own scale)."""

    encoder: str = "resnet18"
    crop: int = 192
    batch: int = 8
    lr: float = 1e-3


def smp_unet(num_classes: int, encoder: str) -> nn.Module:
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise UpsegError('the peer benchmark needs segmentation-models-pytorch: pip install -e ".[peer]"') from None
    return smp.Unet(encoder, encoder_weights=None, in_channels=3, classes=num_classes)


def dice_loss(ignore_index: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.losses.DiceLoss("multiclass", from_logits=True, ignore_index=ignore_index)


class CropDataset(Dataset):
    """Decoded ``(image, mask)`` pairs served as random crops, flipped and normalised."""

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], crop: int, ignore_index: int) -> None:
        self.pairs = pairs
        self.transform = A.Compose(
            [
                A.PadIfNeeded(crop, crop, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore_index),
                A.RandomCrop(crop, crop),
                A.HorizontalFlip(p=0.5),
                A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
                ToTensorV2(),
            ]
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.pairs[index]
        out = self.transform(image=image, mask=mask)
        return out["image"], out["mask"].long()


def peer_crop(pairs: Sequence[tuple[np.ndarray, np.ndarray]], crop: int) -> int:
    """The recipe's crop, no larger than the smallest training image (a multiple of 32)."""
    smallest = min(min(mask.shape[:2]) for _, mask in pairs)
    return max(SMP_MULTIPLE, min(crop, smallest // SMP_MULTIPLE * SMP_MULTIPLE))


def train_peer(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    ignore_index: int,
    seconds: float,
    seed: int,
    recipe: PeerRecipe | None = None,
    clock: Any = time.perf_counter,
) -> tuple[nn.Module, dict[str, Any]]:
    """The peer's model after ``seconds`` of the loop, and what the loop did (steps, seconds, crop)."""
    recipe = recipe or PeerRecipe()
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = smp_unet(num_classes, recipe.encoder)
    crop = peer_crop(pairs, recipe.crop)
    loader = DataLoader(
        CropDataset(pairs, crop, ignore_index),
        batch_size=recipe.batch,
        shuffle=True,
        drop_last=len(pairs) > recipe.batch,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    cross_entropy, dice = nn.CrossEntropyLoss(ignore_index=ignore_index), dice_loss(ignore_index)
    model.train()
    steps, start = 0, clock()
    while clock() - start < seconds:
        for images, masks in loader:
            logits = model(images)
            loss = cross_entropy(logits, masks) + dice(logits, masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if clock() - start >= seconds:
                break
    return model, {"steps": steps, "train_seconds": round(clock() - start, 2), "crop": crop, "batch": recipe.batch}


@torch.no_grad()
def predict_whole(model: nn.Module, images: Tensor) -> Tensor:
    """Class indices ``N×H×W`` of whole images: padded to a multiple of 32, the logits cropped back."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % SMP_MULTIPLE, -width % SMP_MULTIPLE
    logits = model(F.pad(images, (0, pad_w, 0, pad_h)))
    return logits[..., :height, :width].argmax(1)


def evaluate_peer(model: nn.Module, loader: DataLoader, num_classes: int, ignore_index: int) -> dict[str, Tensor]:
    """Per-image IoU and boundary-IoU counts of ``model`` on upseg's test batches (:class:`~upseg.data.Batch`)."""
    scores = PerImageScores(num_classes, ignore_index)
    model.eval()
    for batch in loader:
        scores.update(predict_whole(model, batch.images), batch.masks, batch.indices)
    return scores.compute()
