"""summary.json: what a video's faces.csv says, per track and for the whole video, in one small document.

Per track: when it was first and last seen, on how many analysed frames, the expression it showed
most often and the share of its frames in each expression (the label is the class of the smoothed
row, as on the annotated video), and its mean smoothed probabilities. Per video: its frames,
duration and rate, how many faces and tracks were found, the expression shares over all faces, and
the run's speed.

The rows are read in chunks and folded into per-track accumulators, so memory grows with the number
of tracks, never with the number of rows: an hour of video costs what a minute does.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import TIME_DIGITS
from fervid.analysis.video_file import VideoInfo
from fervid.models.faces import ROUND_DIGITS
from fervid.models.labels import EMOTIONS, NUM_CLASSES


@dataclass
class _Track:
    first_s: float
    last_s: float
    frames_seen: int = 0
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.int64))
    smoothed_sum: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.float64))


def _named(values: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), ROUND_DIGITS) for name, v in zip(EMOTIONS, values)}


def _shares(counts: np.ndarray) -> dict[str, float]:
    """Each class's share of ``counts`` (all 0 when there is nothing to share)."""
    total = counts.sum()
    return _named(counts / total if total else np.zeros(NUM_CLASSES))


def _fold(tracks: dict[int, _Track], rows: FaceRows) -> None:
    """Add one chunk of rows to the per-track accumulators."""
    ids, inverse = np.unique(rows.track, return_inverse=True)
    labels = np.argmax(rows.smoothed, axis=1)
    counts = np.zeros((len(ids), NUM_CLASSES), np.int64)
    np.add.at(counts, (inverse, labels), 1)
    sums = np.zeros((len(ids), NUM_CLASSES), np.float64)
    np.add.at(sums, inverse, rows.smoothed)
    first = np.full(len(ids), np.inf)
    np.minimum.at(first, inverse, rows.time_s)
    last = np.full(len(ids), -np.inf)
    np.maximum.at(last, inverse, rows.time_s)
    for k, track_id in enumerate(ids.tolist()):
        acc = tracks.setdefault(track_id, _Track(float(first[k]), float(last[k])))
        acc.first_s = min(acc.first_s, float(first[k]))
        acc.last_s = max(acc.last_s, float(last[k]))
        acc.frames_seen += int(counts[k].sum())
        acc.label_counts += counts[k]
        acc.smoothed_sum += sums[k]


def summarise(rows_chunks: Iterable[FaceRows], video: VideoInfo, frames_analysed: int, every: int,
              speed: dict) -> dict:
    """The summary document of one analysed video (JSON-able; ``speed`` is copied in as given).

    ``{"video": {path, frames, frames_analysed, every, fps, duration_s, width, height, faces, tracks,
    expressions: {class: share of all faces}, speed}, "tracks": [{id, first_s, last_s, frames_seen,
    dominant, expressions: {class: share of its frames}, mean_smoothed: {class: p}}, ...]}``,
    tracks in id order."""
    tracks: dict[int, _Track] = {}
    for rows in rows_chunks:
        if len(rows):
            _fold(tracks, rows)
    all_counts = sum((t.label_counts for t in tracks.values()), np.zeros(NUM_CLASSES, np.int64))
    return {
        "video": {
            "path": video.path, "frames": video.frames, "frames_analysed": int(frames_analysed), "every": int(every),
            "fps": round(video.fps, 6), "duration_s": round(video.duration_s, TIME_DIGITS),
            "width": video.width, "height": video.height,
            "faces": int(all_counts.sum()), "tracks": len(tracks), "expressions": _shares(all_counts),
            "speed": dict(speed),
        },
        "tracks": [
            {"id": track_id, "first_s": round(t.first_s, TIME_DIGITS), "last_s": round(t.last_s, TIME_DIGITS),
             "frames_seen": t.frames_seen, "dominant": EMOTIONS[int(np.argmax(t.label_counts))],
             "expressions": _shares(t.label_counts), "mean_smoothed": _named(t.smoothed_sum / t.frames_seen)}
            for track_id, t in sorted(tracks.items())
        ],
    }
