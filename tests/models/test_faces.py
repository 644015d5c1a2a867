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
