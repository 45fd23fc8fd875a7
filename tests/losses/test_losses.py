"""The losses of the ``loss`` config group on hand-computed cases: a perfect prediction, a fully wrong one, ignored
pixels contributing nothing (to the value or the gradient), finite gradients, class weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from upseg.cli.validation import build
from upseg.errors import ConfigError
from upseg.losses import CrossEntropy, CrossEntropyDice, Dice, Focal, balanced_class_weights

IGNORE = 255
LOSS_CONFIGS = sorted(path.stem for path in (Path(__file__).parents[2] / "configs" / "loss").glob("*.yaml"))


def one_hot_logits(classes: torch.Tensor, num_classes: int, margin: float = 40.0) -> torch.Tensor:
    """Logits ``N×C×H×W`` that put all probability on ``classes`` (``N×H×W``)."""
    return margin * F.one_hot(classes, num_classes).permute(0, 3, 1, 2).double()


@pytest.fixture
def target() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (2, 6, 7), generator=generator)
    target[0, :2, :] = IGNORE
    return target


@pytest.mark.parametrize("name", LOSS_CONFIGS)
def test_every_configured_loss_is_near_zero_when_perfect_and_ignores_ignored_pixels(train_config, name, target):
    cfg = train_config(f"loss={name}")
    loss = build(cfg.loss, "loss", num_classes=3, ignore_index=IGNORE).double()
    perfect = one_hot_logits(torch.where(target == IGNORE, 0, target), 3)
    assert loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)

    wrong = one_hot_logits(torch.where(target == IGNORE, 0, (target + 1) % 3), 3)
    assert loss(wrong, target).item() > 0.5

    logits = torch.randn(2, 3, 6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    logits.requires_grad_(True)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)
    assert logits.grad[ignored].abs().max() == 0  # no gradient where the target is ignored
    changed = logits.detach().clone()
    changed[ignored] = 1e3 * torch.randn(int(ignored.sum()), dtype=torch.float64)
    torch.testing.assert_close(loss(changed, target), value.detach())  # nor any value

    extreme = (1e4 * torch.randn(2, 3, 6, 7, dtype=torch.float64)).requires_grad_(True)
    loss(extreme.float(), target).backward()
    assert torch.isfinite(extreme.grad).all()


def test_cross_entropy_with_class_weights_by_hand():
    # Two pixels: logits (2, 0) with target 0, logits (0, 1) with target 1; weights 1 and 3.
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64).T.reshape(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    nll_0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    nll_1 = -math.log(math.exp(1) / (math.exp(1) + 1))
    plain = CrossEntropy(2, IGNORE)(logits, target)
    weighted = CrossEntropy(2, IGNORE, class_weights=[1.0, 3.0]).double()(logits, target)
    torch.testing.assert_close(plain, torch.tensor((nll_0 + nll_1) / 2, dtype=torch.float64))
    torch.testing.assert_close(weighted, torch.tensor((nll_0 + 3 * nll_1) / 4, dtype=torch.float64))


def test_dice_by_hand():
    # One 1×2 image, 2 classes: probabilities (0.8, 0.2) and (0.4, 0.6); targets 0 and 1.
    p = np.array([[0.8, 0.4], [0.2, 0.6]])
    logits = torch.from_numpy(np.log(p)).reshape(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    dice_0 = (2 * 0.8 + 1) / ((0.8 + 0.4) + 1 + 1)
    dice_1 = (2 * 0.6 + 1) / ((0.2 + 0.6) + 1 + 1)
    torch.testing.assert_close(
        Dice(2, IGNORE)(logits, target), torch.tensor(1 - (dice_0 + dice_1) / 2, dtype=torch.float64)
    )
    both = CrossEntropyDice(2, IGNORE, ce_weight=0.5, dice_weight=2.0)(logits, target)
    expected = 0.5 * F.cross_entropy(logits, target) + 2.0 * (1 - (dice_0 + dice_1) / 2)
    torch.testing.assert_close(both, expected)


def test_focal_by_hand_and_gamma_zero_is_cross_entropy(target):
    logits = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    q = math.exp(1) / (math.exp(1) + 1 + math.exp(-1))
    focal = Focal(3, IGNORE, gamma=2.0)(logits, torch.tensor([[[0]]]))
    torch.testing.assert_close(focal, torch.tensor(-((1 - q) ** 2) * math.log(q), dtype=torch.float64))
    random = torch.randn(2, 3, 6, 7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(Focal(3, IGNORE, gamma=0.0)(random, target), CrossEntropy(3, IGNORE)(random, target))


def test_balanced_class_weights_from_pixel_counts():
    masks = [np.array([[0, 0, 0, 1]]), np.array([[0, IGNORE, 1, 1]])]  # class 0: 4 pixels, class 1: 3, class 2: 0
    weights = balanced_class_weights(masks, 3, IGNORE)
    torch.testing.assert_close(weights, torch.tensor([7 / (3 * 4), 7 / (3 * 3), 0.0]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CrossEntropy(3, class_weights=[1.0, 2.0]), "3 non-negative numbers"),
        (lambda: CrossEntropy(2, class_weights=[1.0, -2.0]), "non-negative"),
        (lambda: CrossEntropy(2, class_weights="inverse"), "null, balanced or"),
        (lambda: Focal(2, gamma=-1.0), "loss.gamma must be 0 or more"),
        (lambda: Focal(3, alpha=[1.0]), "loss.alpha must have 3 numbers"),
    ],
)
def test_bad_loss_options_are_one_clear_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_balanced_weights_are_computed_when_fitting_and_kept_in_the_checkpoint(train_config, tmp_path):
    from upseg.training.train import train

    summary = train(
        train_config(
            "experiment=quickstart",
            "data.num_train=8",
            "data.num_val=4",
            "data.num_test=4",
            "data.image_size=32",
            "model.net.depth=2",
            "model.net.base_width=8",
            "trainer.max_epochs=1",
            "loss=ce_dice",
            "loss.class_weights=balanced",
        )
    )
    state = torch.load(summary["last_ckpt"], map_location="cpu", weights_only=True)["state_dict"]
    weights = state["criterion.cross_entropy.class_weights"]
    assert weights.shape == (4,) and (weights > 0).all() and not torch.equal(weights, torch.ones(4))
