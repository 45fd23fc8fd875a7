"""The procedural shapes dataset: deterministic, varied, and served in the datamodule's batch format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upseg.data import ShapesDataModule, ShapesDataset
from upseg.errors import ConfigError


def test_same_seed_and_index_give_the_same_sample_and_other_seeds_differ():
    a, b, c = ShapesDataset(4, 48, 4, seed=1), ShapesDataset(4, 48, 4, seed=1), ShapesDataset(4, 48, 4, seed=2)
    for i in range(4):
        assert np.array_equal(a[i][0], b[i][0]) and np.array_equal(a[i][1], b[i][1])
    assert not np.array_equal(a[0][0], c[0][0])


def test_samples_have_every_class_over_a_dataset_and_vary_in_size():
    data = ShapesDataset(64, 64, 6, seed=0)
    masks = np.stack([data[i][1] for i in range(len(data))])
    assert set(np.unique(masks)) == set(range(6))
    foreground = (masks > 0).mean(axis=(1, 2))
    assert foreground.min() < 0.1 < 0.3 < foreground.max()
    image, _ = data[0]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_mask_marks_the_shape_pixels():
    """Pixels of a shape class differ in colour from the background they cover."""
    image, mask = ShapesDataset(1, 64, 4, seed=3)[0]
    inside, outside = image[mask > 0].astype(float), image[mask == 0].astype(float)
    assert np.abs(inside.mean(0) - outside.mean(0)).max() > 20


@pytest.mark.parametrize("kwargs", [{"num_classes": 1}, {"num_classes": 7}, {"image_size": 8}, {"length": 0}])
def test_bad_settings_raise_config_errors(kwargs):
    args = {"length": 2, "image_size": 32, "num_classes": 4, **kwargs}
    with pytest.raises(ConfigError):
        ShapesDataset(**args)


def test_datamodule_serves_normalised_images_and_integer_masks():
    data = ShapesDataModule(num_train=6, num_val=3, num_test=3, image_size=32, batch_size=4, num_workers=0)
    data.setup("fit")
    images, masks, indices = next(iter(data.train_dataloader()))
    assert sorted(indices.tolist()) == sorted(set(indices.tolist())) and set(indices.tolist()) <= set(range(6))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert masks.shape == (4, 32, 32) and masks.dtype == torch.int64
    assert -3 < images.mean() < 3 and masks.max() < 4
    assert data.class_names == ["background", "circle", "square", "triangle"]
    data.setup("test")
    assert len(data.test_dataloader().dataset) == 3
