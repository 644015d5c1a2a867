"""ExpressionSmoother: a time-based moving average of each track's probability rows."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fervid.models.smoothing import ExpressionSmoother

HAPPY = np.array([0, 0, 0, 1, 0, 0, 0], np.float32)
ANGRY = np.array([1, 0, 0, 0, 0, 0, 0], np.float32)
SAD = np.array([0, 0, 0, 0, 1, 0, 0], np.float32)


def test_half_life_zero_returns_the_raw_rows_and_keeps_nothing():
    smoother = ExpressionSmoother(half_life_s=0)
    smoother.update(0.0, np.array([1]), HAPPY[None])
    out = smoother.update(0.1, np.array([1]), ANGRY[None])
    np.testing.assert_array_equal(out, ANGRY[None])
    assert len(smoother) == 0


def test_a_tracks_first_row_is_its_raw_row():
    smoother = ExpressionSmoother(half_life_s=0.5)
    rows = np.stack([HAPPY, ANGRY])
    np.testing.assert_array_equal(smoother.update(0.0, np.array([1, 2]), rows), rows)
    assert len(smoother) == 2


def test_after_one_half_life_the_old_average_weighs_exactly_half():
    smoother = ExpressionSmoother(half_life_s=0.5)
    smoother.update(1.0, np.array([1]), HAPPY[None])
    out = smoother.update(1.5, np.array([1]), ANGRY[None])
    np.testing.assert_allclose(out[0], 0.5 * HAPPY + 0.5 * ANGRY)
    out = smoother.update(2.0, np.array([1]), SAD[None])
    np.testing.assert_allclose(out[0], 0.25 * HAPPY + 0.25 * ANGRY + 0.5 * SAD)
    out = smoother.update(3.0, np.array([1]), HAPPY[None])  # two half-lives: the old average keeps a quarter
    np.testing.assert_allclose(out[0], 0.25 * (0.25 * HAPPY + 0.25 * ANGRY + 0.5 * SAD) + 0.75 * HAPPY)


def test_one_frame_later_the_label_still_follows_the_average():
    smoother = ExpressionSmoother(half_life_s=0.5)
    smoother.update(0.0, np.array([1]), HAPPY[None])
    out = smoother.update(1 / 30, np.array([1]), ANGRY[None])
    assert int(np.argmax(out[0])) == 3 and out[0, 0] == pytest.approx(1 - 0.5 ** (1 / 15), rel=1e-5)


def test_tracks_are_averaged_separately_and_forget_drops_one():
    smoother = ExpressionSmoother(half_life_s=0.5)
    smoother.update(0.0, np.array([1, 2]), np.stack([HAPPY, ANGRY]))
    out = smoother.update(0.5, np.array([2, 1]), np.stack([SAD, SAD]))
    np.testing.assert_allclose(out, [0.5 * ANGRY + 0.5 * SAD, 0.5 * HAPPY + 0.5 * SAD])
    smoother.forget([1, 99])  # an id it never saw is fine
    assert len(smoother) == 1
    out = smoother.update(1.0, np.array([1, 2]), np.stack([ANGRY, ANGRY]))
    np.testing.assert_allclose(out[0], ANGRY)  # track 1 starts over
    np.testing.assert_allclose(out[1], 0.5 * (0.5 * ANGRY + 0.5 * SAD) + 0.5 * ANGRY)


def test_negative_half_life_is_refused():
    with pytest.raises(ValueError, match="half_life_s"):
        ExpressionSmoother(half_life_s=-1)


rows = st.lists(st.floats(0.01, 1.0), min_size=7, max_size=7).map(lambda r: np.array(r) / np.sum(r))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 2.0), rows), min_size=1, max_size=10), st.floats(0.01, 5.0))
def test_smoothed_rows_stay_probability_rows(steps, half_life):
    smoother = ExpressionSmoother(half_life_s=half_life)
    ts = 0.0
    for gap, row in steps:
        ts += gap
        out = smoother.update(ts, np.array([1]), row[None])
        assert out.shape == (1, 7) and np.all(out >= 0)
        assert float(out.sum()) == pytest.approx(1.0, abs=1e-5)
