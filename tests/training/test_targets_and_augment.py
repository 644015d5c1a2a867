import numpy as np

from fervid.training.augment import ERASE_AREA, augment_crops, augmented_epoch, erase_rectangles, mix_up
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


def test_random_erasing_changes_one_rectangle_per_chosen_crop():
    crops = np.full((200, 48, 48), 128, dtype=np.uint8)
    erased = erase_rectangles(crops, np.random.default_rng(4), probability=0.5)
    changed = 0
    for before, after in zip(crops, erased):
        rows, cols = np.nonzero(after != before)
        if rows.size == 0:
            continue
        changed += 1
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box <= ERASE_AREA[1] * 48 * 48 + 48  # one rectangle (rounding adds at most a row)
    assert 70 <= changed <= 130  # about half were chosen
    assert np.array_equal(erase_rectangles(crops, np.random.default_rng(4), 0.0), crops)


def test_mixup_blends_images_and_targets_by_the_same_weight():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 48, 48, 1)).astype(np.float32)
    y = one_hot(np.arange(64) % 7).astype(np.float32)
    mixed_x, mixed_y = mix_up(x, y, np.random.default_rng(5), alpha=0.4)
    assert np.allclose(mixed_y.sum(axis=1), 1)
    for i in range(64):
        own = mixed_y[i, np.argmax(y[i])]
        assert own >= 0.5 - 1e-6  # every sample stays mostly itself
        if own < 1 - 1e-6:  # mixed with a partner of another class: find it and check the pixels
            partner = [j for j in range(64) if np.allclose(x[i] * own + x[j] * (1 - own), mixed_x[i], atol=1e-5)]
            assert partner and np.argmax(y[partner[0]]) == np.argsort(mixed_y[i])[-2]
    off_x, off_y = mix_up(x, y, np.random.default_rng(5), alpha=0.0)
    assert off_x is x and off_y is y


def test_erasing_and_mixup_off_give_exactly_the_plain_epoch():
    crops = np.random.default_rng(2).integers(0, 256, (32, 48, 48), dtype=np.uint8)
    targets = one_hot(np.arange(32) % 7)
    plain = augmented_epoch(crops, targets, epoch=3, seed=1)
    off = augmented_epoch(crops, targets, epoch=3, seed=1, erasing=0.0, mixup=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, off))
    on_x, on_y = augmented_epoch(crops, targets, epoch=3, seed=1, erasing=1.0, mixup=0.2)
    assert not np.array_equal(on_x, plain[0]) and not np.array_equal(on_y, plain[1])
