"""FaceTracker: ids that follow a face, misses only where a scan looked, tracks that end."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fervid.models.tracker import FaceTracker, TrackerParams, covered, iou_matrix

FPS = 30.0
W = 60  # face size of the synthetic boxes


def box(x: float, y: float = 100.0, size: float = W) -> list[float]:
    return [x, y, size, size]


def boxes_strategy(max_size: int = 6):
    """N x 4 boxes with non-negative coordinates and sizes (zero-area boxes included)."""
    one = st.tuples(*(st.integers(0, 300),) * 2, *(st.integers(0, 120),) * 2)
    return st.lists(one, min_size=0, max_size=max_size).map(lambda b: np.array(b, np.float64).reshape(-1, 4))


# -- iou_matrix and covered ---------------------------------------------------------------------
def test_iou_of_known_pairs():
    a = np.array([box(0, 0), box(0, 0)])
    b = np.array([box(0, 0), box(30, 0), box(200, 0)])
    np.testing.assert_allclose(iou_matrix(a, b), [[1, 1 / 3, 0], [1, 1 / 3, 0]])


@settings(max_examples=200, deadline=None)
@given(boxes_strategy(), boxes_strategy())
def test_iou_matrix_is_symmetric_and_in_unit_range(a, b):
    ab, ba = iou_matrix(a, b), iou_matrix(b, a)
    assert ab.shape == (len(a), len(b))
    np.testing.assert_allclose(ab, ba.T)
    assert np.all(ab >= 0) and np.all(ab <= 1 + 1e-12)
    positive = (a[:, 2] > 0) & (a[:, 3] > 0)
    np.testing.assert_allclose(np.diag(iou_matrix(a, a))[positive], 1.0)


def test_covered_counts_centres_inside_the_areas():
    boxes = np.array([box(0, 0), box(100, 0), box(500, 300)])  # centres (30, 30), (130, 30), (530, 330)
    assert covered(boxes, None).tolist() == [True, True, True]
    assert covered(boxes, np.zeros((0, 4))).tolist() == [False, False, False]
    # An area holding the first box whole and most of the second, but not the second's centre.
    assert covered(boxes, np.array([[0, 0, 120, 80]])).tolist() == [True, False, False]
    assert covered(boxes, np.array([[0, 0, 120, 80], [520, 320, 10, 10]])).tolist() == [True, False, True]
    assert covered(np.zeros((0, 4)), np.array([[0, 0, 10, 10]])).shape == (0,)


@pytest.mark.parametrize("kwargs", [{"iou_threshold": 0}, {"iou_threshold": 1}, {"max_age_s": 0},
                                    {"velocity_weight": -0.1}, {"velocity_weight": 1.5}])
def test_rejects_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        TrackerParams(**kwargs)


# -- following faces ----------------------------------------------------------------------------
def test_a_moving_face_keeps_its_id_as_it_speeds_up_to_a_box_width_per_frame():
    """From a standing start a face can move less than half its width between frames and still
    overlap its last box; once moving, the velocity carries the match up to a whole width per frame,
    where the last box and the new one do not overlap at all."""
    tracker = FaceTracker()
    speeds = [0.3 * W] * 3 + [W * (0.3 + 0.1 * k) for k in range(1, 8)] + [W] * 5
    x, ids = 0.0, []
    for frame, speed in enumerate([0.0] + speeds):
        x += speed
        update = tracker.update(frame / FPS, np.array([box(x)]))
        ids.extend(update.ids.tolist())
    assert ids == [1] * len(ids)
    assert len(tracker) == 1 and tracker.tracks[0].hits == len(ids)
    # The velocity estimate has caught up with a box width per frame.
    assert tracker.tracks[0].velocity[0] == pytest.approx(W * FPS, rel=0.05)
    _, predicted = tracker.predicted((len(ids)) / FPS)
    assert predicted[0, 0] == pytest.approx(x + W, abs=0.05 * W)


def test_two_faces_crossing_at_constant_speed_keep_their_ids():
    """They pass each other at 24 px per frame, 6 px apart at the closest frame: the next frame,
    each face's last box lies nearer the other face's new box, so only the predicted boxes keep
    the ids from swapping."""
    tracker = FaceTracker()
    left_to_right, right_to_left = [], []
    for frame in range(17):
        a = box(24 * frame, 100)
        b = box(396 - 24 * frame, 104)
        flipped = frame % 2 == 1  # detections come in any order
        update = tracker.update(frame / FPS, np.array([b, a] if flipped else [a, b]))
        ida, idb = (update.ids[1], update.ids[0]) if flipped else (update.ids[0], update.ids[1])
        left_to_right.append(int(ida))
        right_to_left.append(int(idb))
    assert left_to_right == [1] * 17 and right_to_left == [2] * 17


def test_a_face_that_leaves_and_returns_within_max_age_keeps_its_id():
    tracker = FaceTracker(TrackerParams(max_age_s=1.0))
    for frame in range(5):
        assert tracker.update(frame / FPS, np.array([box(100)])).ids.tolist() == [1]
    for frame in range(5, 20):  # half a second of full scans that do not find it
        update = tracker.update(frame / FPS, np.zeros((0, 4)))
        assert update.missed == [1] and update.ended == []
    assert tracker.tracks[0].misses == 15
    update = tracker.update(20 / FPS, np.array([box(102)]))
    assert update.ids.tolist() == [1] and update.started == []
    assert tracker.tracks[0].misses == 0


def test_a_face_away_longer_than_max_age_comes_back_with_a_new_id():
    tracker = FaceTracker(TrackerParams(max_age_s=1.0))
    for frame in range(5):
        tracker.update(frame / FPS, np.array([box(100)]))
    ended_at = None
    for frame in range(5, 40):
        update = tracker.update(frame / FPS, np.zeros((0, 4)))
        if update.ended:
            assert update.ended == [1] and ended_at is None
            ended_at = frame
    # Last seen at frame 4: it ends at the first frame more than max_age_s later.
    assert ended_at == 4 + 31 and len(tracker) == 0
    update = tracker.update(40 / FPS, np.array([box(100)]))
    assert update.ids.tolist() == [2] and update.started == [2]


def test_a_track_past_max_age_takes_no_detection_even_without_updates_in_between():
    tracker = FaceTracker(TrackerParams(max_age_s=1.0))
    tracker.update(0.0, np.array([box(100)]))
    update = tracker.update(2.0, np.array([box(100)]))  # the next frame comes two seconds later
    assert update.ids.tolist() == [2] and update.ended == [1]


def test_a_face_appearing_beside_a_track_starts_its_own():
    tracker = FaceTracker(first_id=7)
    tracker.update(0.0, np.array([box(100)]))
    update = tracker.update(1 / FPS, np.array([box(400), box(101)]))
    assert update.ids.tolist() == [8, 7] and update.started == [8]
    ids, predicted = tracker.predicted(1 / FPS)
    assert sorted(ids.tolist()) == [7, 8] and predicted.shape == (2, 4)


def test_a_detection_that_does_not_overlap_a_track_is_a_new_face():
    tracker = FaceTracker()
    tracker.update(0.0, np.array([box(100)]))
    update = tracker.update(1 / FPS, np.array([box(400)]))  # the first face is gone, another appears
    assert update.ids.tolist() == [2] and update.started == [2] and update.missed == [1]


# -- misses only where a scan looked ------------------------------------------------------------
def test_a_scan_that_did_not_look_at_a_track_does_not_miss_it():
    tracker = FaceTracker()
    tracker.update(0.0, np.array([box(100), box(400)]))  # tracks 1 (centre 130) and 2 (centre 430)
    around_first = np.array([[70, 70, 120, 120]])
    update = tracker.update(1 / FPS, np.array([box(100)]), scanned=around_first)
    assert update.missed == []
    update = tracker.update(2 / FPS, np.zeros((0, 4)), scanned=around_first)
    assert update.missed == [1]
    misses = {t.id: t.misses for t in tracker.tracks}
    assert misses == {1: 1, 2: 0}
    update = tracker.update(3 / FPS, np.zeros((0, 4)))  # a full scan covers every track
    assert sorted(update.missed) == [1, 2]


def test_time_must_not_go_backwards():
    tracker = FaceTracker()
    tracker.update(1.0, np.zeros((0, 4)))
    tracker.update(1.0, np.zeros((0, 4)))  # the same time is fine
    with pytest.raises(ValueError, match="frame order"):
        tracker.update(0.5, np.zeros((0, 4)))
