"""Faces: the one face type, its derived columns and its JSON records."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS

PROBS = np.array([[0.1, 0, 0, 0.6, 0.1, 0.1, 0.1], [0.7, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]], np.float32)
BOXES = np.array([[300, 40, 96, 96], [10, 20, 48, 50]])


def test_columns_and_derived_labels():
    faces = Faces(BOXES, PROBS)
    assert len(faces) == 2 and faces.boxes.dtype == np.int32 and faces.probabilities.dtype == np.float32
    assert faces.emotions == ["happy", "angry"]
    np.testing.assert_allclose(faces.confidences, [0.6, 0.7])


def test_detected_faces_have_no_labels_until_classified():
    detected = Faces(BOXES)
    assert not detected.classified and len(detected) == 2
    with pytest.raises(ValueError):
        detected.emotions
    assert detected.with_probabilities(PROBS) == Faces(BOXES, PROBS)


def test_mismatched_rows_are_refused():
    with pytest.raises(ValueError):
        Faces(BOXES, PROBS[:1])


def test_records_round_trip_through_json_and_sort_left_to_right():
    faces = Faces(BOXES, PROBS)
    records = json.loads(json.dumps(faces.to_records(), allow_nan=False))
    assert [r["emotion"] for r in records] == ["happy", "angry"]
    assert list(records[0]["probabilities"]) == list(EMOTIONS)
    assert Faces.from_records(records) == faces
    ordered = faces.sorted_left_to_right()
    assert ordered.boxes[:, 0].tolist() == [10, 300] and ordered.emotions == ["angry", "happy"]


def test_empty():
    empty = Faces.empty()
    assert len(empty) == 0 and empty.emotions == [] and empty.to_records() == []
    assert Faces.from_records([]) == empty and len(empty.confidences) == 0


# -- the tracking columns -----------------------------------------------------------------------
IDS = np.array([4, 9])
SMOOTHED = np.array([[0.7, 0, 0, 0.1, 0.1, 0.05, 0.05], [0.1, 0, 0, 0.1, 0.1, 0.1, 0.6]], np.float32)


def test_tracking_columns_are_typed_and_checked_against_the_boxes():
    faces = Faces(BOXES, PROBS, IDS.tolist(), SMOOTHED.tolist())
    assert faces.track_ids.dtype == np.int64 and faces.smoothed.dtype == np.float32
    assert faces.smoothed.shape == (2, 7) and repr(faces) == "Faces(2 classified, tracked)"
    with pytest.raises(ValueError, match="track ids"):
        Faces(BOXES, PROBS, IDS[:1])
    with pytest.raises(ValueError, match="smoothed"):
        Faces(BOXES, PROBS, IDS, SMOOTHED[:1])
    with pytest.raises(ValueError, match="raw probabilities"):
        Faces(BOXES, None, IDS, SMOOTHED)
    assert Faces(BOXES, None, IDS).track_ids.tolist() == [4, 9]  # detected and tracked, not yet classified


def test_labels_come_from_the_smoothed_rows_when_there_are_any():
    raw = Faces(BOXES, PROBS, IDS)
    assert raw.emotions == ["happy", "angry"]
    smoothed = raw.with_tracks(IDS, SMOOTHED)
    assert smoothed.emotions == ["angry", "neutral"]
    np.testing.assert_allclose(smoothed.confidences, [0.7, 0.6])
    np.testing.assert_array_equal(smoothed.probabilities, PROBS)  # the raw rows stay


def test_with_probabilities_keeps_the_track_ids():
    tracked = Faces(BOXES, None, IDS).with_probabilities(PROBS)
    assert tracked.track_ids.tolist() == [4, 9] and tracked.smoothed is None


def test_take_and_sorting_carry_every_column():
    faces = Faces(BOXES, PROBS, IDS, SMOOTHED)
    taken = faces.take([1])
    assert taken.boxes.tolist() == [[10, 20, 48, 50]] and taken.track_ids.tolist() == [9]
    np.testing.assert_array_equal(taken.probabilities, PROBS[1:])
    np.testing.assert_array_equal(taken.smoothed, SMOOTHED[1:])
    ordered = faces.sorted_left_to_right()
    assert ordered.boxes[:, 0].tolist() == [10, 300] and ordered.track_ids.tolist() == [9, 4]
    np.testing.assert_array_equal(ordered.smoothed, SMOOTHED[::-1])
    assert ordered.emotions == ["neutral", "angry"]
    assert Faces(BOXES, None, IDS).take([1, 0]).track_ids.tolist() == [9, 4]


def test_tracked_records_round_trip_through_json():
    faces = Faces(BOXES, PROBS, IDS, SMOOTHED)
    records = json.loads(json.dumps(faces.to_records(), allow_nan=False))
    assert [r["track"] for r in records] == [4, 9]
    assert list(records[0]["smoothed"]) == list(EMOTIONS)
    assert [r["emotion"] for r in records] == ["angry", "neutral"]  # the smoothed label
    assert records[0]["confidence"] == pytest.approx(0.7)
    assert records[0]["probabilities"]["happy"] == pytest.approx(0.6)
    back = Faces.from_records(records)
    assert back == faces and back.track_ids.tolist() == [4, 9]
    ids_only = Faces(BOXES, PROBS, IDS)
    records = ids_only.to_records()
    assert "smoothed" not in records[0]
    assert Faces.from_records(records) == ids_only
    assert "track" not in Faces(BOXES, PROBS).to_records()[0]


def test_records_that_do_not_all_carry_a_column_give_none():
    records = Faces(BOXES, PROBS, IDS, SMOOTHED).to_records()
    del records[1]["track"], records[0]["smoothed"]
    back = Faces.from_records(records)
    assert back.track_ids is None and back.smoothed is None and back == Faces(BOXES, PROBS)


def test_equality_counts_the_tracking_columns():
    faces = Faces(BOXES, PROBS, IDS, SMOOTHED)
    assert faces == Faces(BOXES, PROBS, IDS.copy(), SMOOTHED + 4e-7)  # within the records' rounding
    assert faces != Faces(BOXES, PROBS, IDS, SMOOTHED + 1e-5)
    assert faces != Faces(BOXES, PROBS, IDS[::-1], SMOOTHED)
    assert faces != Faces(BOXES, PROBS, None, SMOOTHED)
    assert faces != Faces(BOXES, PROBS, IDS)
    assert Faces(BOXES, PROBS, IDS) != Faces(BOXES, PROBS)
