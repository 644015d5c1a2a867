"""``join_tracks``: one segment's local track ids renumbered into the video's global ones.

Every segment starts a fresh tracker at its warm-up, so a face that crosses a segment border has
one track on each side. Over the warm-up frames both segments analysed the same face, and their
boxes lie on top of each other (the same detector on the same frames; the plans may differ, so
not always exactly): tracks are matched by the mean IoU of their boxes over the frames where both
were seen, one to one (``linear_sum_assignment``, so two faces crossing each other near a border
go to the pairing that fits best over all those frames, not to whichever is nearer in one).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from fervid.analysis.face_rows import FaceRows
from fervid.models.tracker import iou_matrix

JOIN_MIN_IOU = 0.3
"""Least mean IoU over shared frames for a new segment's track to continue a previous one: the
tracker's own threshold for a box to continue a track from one frame to the next. Boxes of one
face from two segments usually agree far better (most shared frames give the same box); two
different faces side by side overlap far less."""


def match_scores(previous_tail: FaceRows, warmup: FaceRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global ids, local ids, and the mean IoU of each (global, local) pair over the frames where
    both tracks were seen (0 for pairs never seen together)."""
    global_ids, local_ids = np.unique(previous_tail.track), np.unique(warmup.track)
    iou_sum = np.zeros((len(global_ids), len(local_ids)))
    shared = np.zeros_like(iou_sum)
    for frame in np.intersect1d(previous_tail.frame, warmup.frame):
        before, after = previous_tail.frame == frame, warmup.frame == frame
        rows = np.searchsorted(global_ids, previous_tail.track[before])[:, None]
        columns = np.searchsorted(local_ids, warmup.track[after])[None, :]
        # A track has one box per frame, so the pairs of one frame are distinct cells.
        iou_sum[rows, columns] += iou_matrix(previous_tail.boxes[before], warmup.boxes[after])
        shared[rows, columns] += 1
    return global_ids, local_ids, np.divide(iou_sum, shared, out=np.zeros_like(iou_sum), where=shared > 0)


def join_tracks(previous_tail: FaceRows, warmup: FaceRows, rows: FaceRows, next_id: int) -> tuple[FaceRows, int]:
    """``rows`` (a segment's written rows, local ids) with global ids, and the next unused id.

    ``previous_tail``: the previous segment's rows in this segment's warm-up frames (global ids);
    ``warmup``: this segment's rows there (local ids). A local track matched to a global one takes
    its id; every other track of ``rows`` gets a new id from ``next_id``, in order of first
    appearance."""
    global_ids, local_ids, scores = match_scores(previous_tail, warmup)
    mapping: dict[int, int] = {}
    if scores.size:
        for g, l in zip(*linear_sum_assignment(scores, maximize=True)):
            if scores[g, l] >= JOIN_MIN_IOU:
                mapping[int(local_ids[l])] = int(global_ids[g])
    local, first = np.unique(rows.track, return_index=True)
    for track in local[np.argsort(first)]:
        if int(track) not in mapping:
            mapping[int(track)] = next_id
            next_id += 1
    return rows.with_tracks(np.array([mapping[int(t)] for t in rows.track], np.int64)), next_id
