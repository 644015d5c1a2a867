"""Labels and boxes drawn on frames (models.annotate): track ids and smoothed labels when faces carry them.

Real images, real OpenCV drawing; what was drawn is read back from the pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from fervid.models.annotate import EMOTION_COLOURS_BGR, draw_faces, face_label, face_labels, label_scale, \
    ordered_probabilities
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from tests.helpers.zmq_helpers import frame_bgr

RAW = [0.05, 0.05, 0.1, 0.6, 0.1, 0.05, 0.05]  # happy
SMOOTHED = [0.05, 0.05, 0.1, 0.3, 0.4, 0.05, 0.05]  # sad: the track's average disagrees with this frame
BOX = (60, 90, 100, 110)


def tracked(track: int = 3) -> Faces:
    return Faces([BOX], [RAW], track_ids=[track], smoothed=[SMOOTHED])


def label_run(image: np.ndarray, faces: Faces) -> tuple[int, tuple[int, int, int]]:
    """Width in pixels and colour of the label background drawn above the first face's box,
    read along the row just inside the label's top edge (above the glyphs; Hershey fonts give
    every text the same height)."""
    x, y, _, _ = BOX
    scale, thickness = label_scale(image)
    (_, th), base = cv2.getTextSize("#0 happy 100%", cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thickness)
    row = draw_faces(image, faces)[y - th - base - 3]
    colour = tuple(int(v) for v in row[x])
    run = 0
    while x + run < len(row) and tuple(row[x + run]) == colour:
        run += 1
    return run, colour


def expected_width(text: str, image: np.ndarray) -> int:
    scale, thickness = label_scale(image)
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thickness)
    return tw + 5  # the filled rectangle spans x .. x + tw + 4, both ends included


def test_labels_carry_the_track_id_and_the_smoothed_expression():
    assert face_label("happy", 0.6) == "happy 60%"
    assert face_label("sad", 0.4, 3) == "#3 sad 40%"
    assert face_labels(Faces([BOX], [RAW])) == ["happy 60%"]
    assert face_labels(tracked()) == ["#3 sad 40%"]
    assert face_labels(Faces([BOX, BOX], [RAW, SMOOTHED], track_ids=[7, 0])) == ["#7 happy 60%", "#0 sad 40%"]
    assert face_labels(Faces([BOX], [RAW], smoothed=[SMOOTHED])) == ["sad 40%"]


def test_a_tracked_face_is_drawn_with_its_id_and_smoothed_label():
    """The label drawn on the frame is as wide as ``#3 sad 40%`` and in sad's colour, box included;
    an untracked face's is as wide as ``happy 60%``, in happy's colour."""
    image = frame_bgr()
    run, colour = label_run(image, tracked())
    assert colour == EMOTION_COLOURS_BGR["sad"] and run == expected_width("#3 sad 40%", image)
    x, y, w, h = BOX
    assert tuple(draw_faces(image, tracked())[y + h // 2, x]) == EMOTION_COLOURS_BGR["sad"]
    run, colour = label_run(image, tracked(track=12345))
    assert run == expected_width("#12345 sad 40%", image)
    run, colour = label_run(image, Faces([BOX], [RAW]))
    assert colour == EMOTION_COLOURS_BGR["happy"] and run == expected_width("happy 60%", image)
    assert expected_width("happy 60%", image) != expected_width("#3 sad 40%", image)


def test_bars_read_the_smoothed_row_when_there_is_one():
    assert ordered_probabilities(tracked(), 0) == [(name, np.float32(p)) for name, p in zip(EMOTIONS, SMOOTHED)]
    assert ordered_probabilities(Faces([BOX], [RAW], track_ids=[3]), 0) == [
        (name, np.float32(p)) for name, p in zip(EMOTIONS, RAW)]
