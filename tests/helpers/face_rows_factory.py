"""Rows of faces for the analysis tests: tracks with a known expression, box and frames.

Each track's smoothed rows favour one class (0.7 against 0.05 for each other class), so its label,
its colour on the timeline and its box colour in an annotated video are known in advance; its raw
rows are random (seeded) probability rows, as a classifier's would be.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fervid.analysis.face_rows import FaceRows
from fervid.models.labels import EMOTIONS, NUM_CLASSES


def smoothed_row(emotion: str) -> np.ndarray:
    row = np.full(NUM_CLASSES, 0.05, np.float32)
    row[EMOTIONS.index(emotion)] = 0.7
    return row


def track_rows(track: int, frames: Iterable[int], fps: float, emotion: str,
               box: tuple[int, int, int, int] = (100, 80, 120, 120), seed: int = 0) -> FaceRows:
    """One row per frame in ``frames`` for ``track``, labelled ``emotion``."""
    frame = np.asarray(list(frames), np.int64)
    raw = np.random.default_rng(seed).dirichlet(np.ones(NUM_CLASSES), len(frame)).astype(np.float32)
    return FaceRows(frame, frame / fps, np.full(len(frame), track), np.tile(box, (len(frame), 1)), raw,
                    np.tile(smoothed_row(emotion), (len(frame), 1)))


def in_frame_order(*parts: FaceRows) -> FaceRows:
    """Several tracks' rows merged in frame order (as segments produce and faces.csv stores them)."""
    rows = FaceRows.concat(list(parts))
    return rows.take(np.argsort(rows.frame, kind="stable"))
