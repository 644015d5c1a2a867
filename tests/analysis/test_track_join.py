"""join_tracks: faces crossing a segment border keep their ids, other faces get new ones."""
from __future__ import annotations

import numpy as np

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.track_join import JOIN_MIN_IOU, join_tracks, match_scores
from fervid.models.labels import NUM_CLASSES
from fervid.models.tracker import iou_matrix

BORDER = 15
"""The new segment's first written frame; its warm-up is frames 10 to 14."""
WARMUP = range(10, BORDER)


def rows(*tracks: tuple[int, dict[int, tuple[int, int, int, int]]]) -> FaceRows:
    """Rows from ``(track, {frame: box})`` pairs, sorted by frame as segments give them."""
    entries = sorted((frame, track, box) for track, boxes in tracks for frame, box in boxes.items())
    n = len(entries)
    p = np.full((n, NUM_CLASSES), 1 / NUM_CLASSES)
    return FaceRows([e[0] for e in entries], [e[0] / 30 for e in entries], [e[1] for e in entries],
                    [e[2] for e in entries], p, p)


def moving(frames, x0, dx, y=100, size=60, jitter=0):
    """A face moving ``dx`` pixels per frame; ``jitter`` shifts every other box (two detections
    of one face never agree exactly)."""
    return {f: (x0 + dx * (f - 10) + (jitter if f % 2 else 0), y, size, size) for f in frames}


def tail_and_warmup(all_rows: FaceRows) -> tuple[FaceRows, FaceRows]:
    in_warmup = np.isin(all_rows.frame, list(WARMUP))
    return all_rows.take(in_warmup), all_rows.take(~in_warmup)


def test_a_face_crossing_the_border_keeps_its_id():
    previous_tail = rows((7, moving(WARMUP, 100, 4)))
    warmup, new = tail_and_warmup(rows((1, moving(range(10, 30), 100, 4, jitter=3))))
    joined, next_id = join_tracks(previous_tail, warmup, new, next_id=9)
    assert set(joined.track.tolist()) == {7} and next_id == 9
    assert np.array_equal(joined.frame, new.frame) and np.array_equal(joined.boxes, new.boxes)


def test_two_faces_crossing_each_other_at_the_border_keep_theirs():
    # A walks right and B left; they pass each other in the warm-up, overlapping heavily there.
    a_before, b_before = moving(WARMUP, 200, 10), moving(WARMUP, 280, -10)
    previous_tail = rows((3, a_before), (4, b_before))
    # The new tracker numbers them the other way round.
    warmup, new = tail_and_warmup(rows((1, moving(range(10, 25), 280, -10, jitter=2)),
                                       (2, moving(range(10, 25), 200, 10, jitter=2))))
    assert iou_matrix([a_before[14]], [b_before[14]])[0, 0] == 1.0, "they meet in the warm-up's last frame"
    joined, next_id = join_tracks(previous_tail, warmup, new, next_id=5)
    assert next_id == 5
    a = joined.boxes[:, 0] == 200 + 10 * (joined.frame - 10) + np.where(joined.frame % 2, 2, 0)
    assert set(joined.track[a].tolist()) == {3} and set(joined.track[~a].tolist()) == {4}


def test_a_face_leaving_before_the_border_and_another_arriving_after_it_are_two_faces():
    previous_tail = rows((2, moving(range(10, 12), 100, 0)))  # gone after frame 11
    # Another face enters later near the same place: the new segment never saw both in a frame.
    warmup, new = tail_and_warmup(rows((1, moving(range(17, 25), 110, 0)), (2, moving(range(20, 25), 400, 0))))
    joined, next_id = join_tracks(previous_tail, warmup, new, next_id=6)
    assert joined.track.tolist() == [6, 6, 6, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7] and next_id == 8
    assert joined.track[joined.boxes[:, 0] == 400].tolist() == [7] * 5, "ids in order of first appearance"


def test_a_track_joins_only_when_its_boxes_overlap_enough_on_average():
    previous_tail = rows((1, moving(WARMUP, 100, 0)))
    # Shifted sideways: 60-px boxes 28 px apart overlap with IoU 0.35, 36 px apart with 0.25.
    for shift, joins in [(28, True), (36, False)]:
        warmup, new = tail_and_warmup(rows((1, moving(range(10, 20), 100 + shift, 0))))
        _, _, scores = match_scores(previous_tail, warmup)
        assert (scores[0, 0] >= JOIN_MIN_IOU) == joins
        joined, _ = join_tracks(previous_tail, warmup, new, next_id=2)
        assert set(joined.track.tolist()) == ({1} if joins else {2})


def test_the_first_segment_numbers_its_tracks_by_first_appearance():
    new = rows((3, moving(range(0, 5), 100, 0)), (1, moving(range(2, 6), 300, 0)), (2, moving([6], 500, 0)))
    joined, next_id = join_tracks(FaceRows.empty(), FaceRows.empty(), new, next_id=1)
    assert next_id == 4
    assert {int(x): int(t) for x, t in zip(joined.boxes[:, 0], joined.track)} == {100: 1, 300: 2, 500: 3}
