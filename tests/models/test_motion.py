"""MotionDetector: the changed areas of a frame in frame pixels, and the changed share."""
from __future__ import annotations

import cv2
import numpy as np

from fervid.media.samples import SAMPLE_CLIP
from fervid.models.motion import MotionDetector

HEIGHT, WIDTH = 360, 640


def grey_frame(value: int = 60) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), value, np.uint8)


def test_the_first_frame_and_a_still_frame_report_no_motion():
    detector = MotionDetector()
    first = detector.update(grey_frame())
    assert first.changed == 0.0 and first.boxes.shape == (0, 4)
    again = detector.update(grey_frame())
    assert again.changed == 0.0 and again.boxes.shape == (0, 4)


def test_a_new_bright_square_is_found_where_it_is_in_frame_pixels():
    detector = MotionDetector()
    detector.update(grey_frame())
    frame = grey_frame()
    frame[200:280, 400:480] = 255
    motion = detector.update(frame)
    assert motion.boxes.dtype == np.int32 and len(motion.boxes) == 1
    x, y, w, h = motion.boxes[0]
    # Found on a 160-pixel-wide blurred copy and dilated: a box a little larger than the square.
    assert x <= 400 <= x + 20 and y <= 200 <= y + 20
    assert 480 <= x + w <= 500 and 280 <= y + h <= 300
    assert 0.02 < motion.changed < 0.05  # about 80 * 80 / (640 * 360) of the frame


def test_a_change_of_the_whole_frame_is_a_large_share():
    detector = MotionDetector()
    detector.update(grey_frame(20))
    motion = detector.update(grey_frame(230))
    assert motion.changed > 0.95


def test_a_change_below_the_threshold_is_no_motion():
    detector = MotionDetector(threshold=20)
    detector.update(grey_frame(100))
    assert detector.update(grey_frame(110)).changed == 0.0


def test_the_average_settles_after_a_change_stays():
    detector = MotionDetector(average_weight=0.5)
    detector.update(grey_frame(20))
    shares = [detector.update(grey_frame(230)).changed for _ in range(8)]
    assert shares[0] > 0.95 and shares[-1] == 0.0


def test_the_sample_clip_moves_a_little_then_cuts():
    """Its first frames: a person moving a little (small boxes, a tiny share); about frame 20 the
    shot changes, which is the kind of change that must cause a full scan."""
    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    try:
        frames = [capture.read()[1] for _ in range(25)]
    finally:
        capture.release()
    detector = MotionDetector()
    found = [detector.update(frame) for frame in frames]
    calm = found[1:11]
    assert all(0 <= m.changed < 0.02 for m in calm) and sum(len(m.boxes) > 0 for m in calm) >= 5
    for m in calm:
        for x, y, w, h in m.boxes:
            assert 0 <= x and 0 <= y and x + w <= WIDTH + 4 and y + h <= HEIGHT + 4
    assert max(m.changed for m in found) > 0.25
