import numpy as np

from fervid.training.augment import augment_crops, augmented_epoch
from fervid.training.targets import blend_ferplus, one_hot


def test_blend_keeps_rows_without_votes_one_hot():
    labels = np.array([0, 3])
    votes = np.array([[0, 0, 0, 0, 0, 0, 1.0], [np.nan] * 7])
    targets = blend_ferplus(labels, votes, 0.3)
    assert np.allclose(targets[0], [0.7, 0, 0, 0, 0, 0, 0.3])
    assert np.array_equal(targets[1], one_hot(labels)[1])
    assert np.allclose(targets.sum(axis=1), 1)


def test_augmentation_changes_pixels_but_keeps_shape_and_range():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (16, 48, 48), dtype=np.uint8)
    out = augment_crops(crops, np.random.default_rng(1))
    assert out.shape == crops.shape and out.dtype == np.uint8
    assert not np.array_equal(out, crops)
    flips_only = augment_crops(crops, np.random.default_rng(1), strength=0)
    for original, flipped in zip(crops, flips_only):
        assert np.array_equal(flipped, original) or np.array_equal(flipped, original[:, ::-1])


def test_epochs_are_shuffled_normalised_and_reproducible():
    crops = np.repeat(np.arange(10, dtype=np.uint8)[:, None, None] * 20, 48 * 48).reshape(10, 48, 48)
    targets = one_hot(np.arange(10) % 7)
    x, y = augmented_epoch(crops, targets, epoch=0, seed=3)
    assert x.shape == (10, 48, 48, 1) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    assert np.allclose(y.sum(0), targets.sum(0))  # every sample once
    again, _ = augmented_epoch(crops, targets, epoch=0, seed=3)
    assert np.array_equal(x, again)
    other, _ = augmented_epoch(crops, targets, epoch=1, seed=3)
    assert not np.array_equal(x, other)
