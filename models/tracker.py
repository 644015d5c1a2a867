"""``FaceTracker``: face tracks with ids that stay the same while a face stays in view.

Detections are associated with tracks by IoU between each track's predicted box (its last box
moved by its velocity) and the detected boxes; the assignment is the optimal one
(``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``), and a pair counts only with IoU at or
above ``iou_threshold``. Tracks the detector has lost for a few frames get a second chance, as in
ByteTrack's second association: the detections left over are assigned to them by centre distance,
within ``reacquire_distance`` of the track's size and with a similar size (a face that turned away
and back has often moved by half its width meanwhile). An unmatched detection starts a track; a
track ends once it has gone unmatched for ``max_age_s``.

A scan that did not look where a track is cannot miss it: ``update`` takes the areas that were
scanned, and only tracks whose predicted centre lay inside them count a miss. That matters in the
service, where a frame's scan plan is made before the results of the frames ahead of it are in:
a track born from frame 10 is not in frame 11's plan, and frame 11's region scans say nothing
about it. Time is whatever clock the caller uses (wall clock live, media time for a recording),
as long as it never goes backwards.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N x 4, x y w h) with every box in ``b`` (M x 4): N x M."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter = (np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
             * np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None))
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass(frozen=True)
class TrackerParams:
    iou_threshold: float = 0.3
    """Least IoU between a track's predicted box and a detection for them to be the same face."""
    max_age_s: float = 1.0
    """A track ends after going unmatched this long (in scans that covered it or not)."""
    velocity_weight: float = 0.3
    """How much a new observation of a track's speed counts against its running estimate."""
    reacquire_distance: float = 0.75
    """Second association, for tracks missed in their last scan: the largest centre distance, as a
    share of the track's size, at which a left-over detection of similar size is the same face."""
    predict_horizon_s: float = 0.2
    """A track's box is moved by its velocity for at most this long after it was last seen:
    a face the detector lost (turned away, blurred) is usually still near where it was, and an
    extrapolation over a long gap drifts away from it and splits the track."""

    def __post_init__(self) -> None:
        if not 0 < self.iou_threshold < 1:
            raise ValueError(f"iou_threshold must be in (0, 1), got {self.iou_threshold}")
        if self.max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {self.max_age_s}")
        if not 0 <= self.velocity_weight <= 1:
            raise ValueError(f"velocity_weight must be in [0, 1], got {self.velocity_weight}")
        if self.reacquire_distance < 0:
            raise ValueError(f"reacquire_distance must be >= 0, got {self.reacquire_distance}")
        if self.predict_horizon_s < 0:
            raise ValueError(f"predict_horizon_s must be >= 0, got {self.predict_horizon_s}")


@dataclass
class Track:
    """One face followed over time. ``box`` is float ``(x, y, w, h)`` at ``last_seen``."""

    id: int
    box: np.ndarray
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    """Change of ``box`` per second, smoothed; position only (Haar's box sizes jitter by several
    per cent from frame to frame, so a size trend would mostly extrapolate noise)."""
    hits: int = 1
    misses: int = 0
    """Scans in a row that covered the track and did not find it."""

    def predicted(self, ts: float, horizon_s: float = float("inf")) -> np.ndarray:
        """Where the box should be at ``ts``, moving as it did for at most ``horizon_s``."""
        return self.box + self.velocity * min(max(0.0, ts - self.last_seen), horizon_s)


@dataclass(frozen=True)
class TrackUpdate:
    """What one ``update`` did."""

    ids: np.ndarray
    """Track id of each detection, in the order the detections were given."""
    started: list[int]
    ended: list[int]
    missed: list[int]
    """Tracks that a scan covered and did not find."""


def _centres(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + boxes[:, 2:] / 2


def covered(boxes: np.ndarray, areas: np.ndarray | None) -> np.ndarray:
    """Which boxes have their centre inside one of ``areas`` (x y w h); ``None``: the whole frame."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if areas is None:
        return np.ones(len(boxes), bool)
    areas = np.asarray(areas, np.float64).reshape(-1, 4)
    if not len(areas) or not len(boxes):
        return np.zeros(len(boxes), bool)
    c = _centres(boxes)[:, None, :]
    inside = ((c[..., 0] >= areas[:, 0]) & (c[..., 0] <= areas[:, 0] + areas[:, 2])
              & (c[..., 1] >= areas[:, 1]) & (c[..., 1] <= areas[:, 1] + areas[:, 3]))
    return inside.any(axis=1)


class FaceTracker:
    """Tracks of one stream. Not thread-safe: one owner calls ``update`` in frame order."""

    def __init__(self, params: TrackerParams | None = None, first_id: int = 1):
        self.params = params or TrackerParams()
        self._ids = itertools.count(first_id)
        self._tracks: dict[int, Track] = {}
        self._last_ts: float | None = None

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks.values())

    def __len__(self) -> int:
        return len(self._tracks)

    def predicted(self, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Ids (int64) and predicted boxes (float, N x 4) of the live tracks at ``ts``."""
        tracks = self.tracks
        ids = np.array([t.id for t in tracks], np.int64)
        boxes = np.array([t.predicted(ts, self.params.predict_horizon_s) for t in tracks], np.float64).reshape(-1, 4)
        return ids, boxes

    def update(self, ts: float, boxes: np.ndarray, scanned: np.ndarray | None = None) -> TrackUpdate:
        """Associate one frame's detections with the tracks.

        ``scanned``: the areas (x y w h) the frame's scan looked at; ``None`` means the whole frame.
        """
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError(f"time went backwards ({ts} after {self._last_ts}): update in frame order")
        self._last_ts = ts
        # End expired tracks first: after a gap in updates (a stalled or reconnecting stream) a
        # track unseen for longer than max_age_s must not take the next detection.
        ended = [t.id for t in self.tracks if ts - t.last_seen > self.params.max_age_s]
        for track_id in ended:
            del self._tracks[track_id]
        detections = np.asarray(boxes, np.float64).reshape(-1, 4)
        tracks = self.tracks
        _, predicted = self.predicted(ts)  # in the order of ``tracks``
        ids = np.zeros(len(detections), np.int64)
        matched_tracks: set[int] = set()
        if len(tracks) and len(detections):
            overlap = iou_matrix(predicted, detections)
            rows, cols = linear_sum_assignment(1.0 - overlap)
            for r, c in zip(rows, cols):
                if overlap[r, c] >= self.params.iou_threshold:
                    self._observe(tracks[r], ts, detections[c])
                    ids[c] = tracks[r].id
                    matched_tracks.add(r)
        self._reacquire(ts, tracks, predicted, detections, ids, matched_tracks)
        started = []
        for c in np.flatnonzero(ids == 0):
            track = Track(next(self._ids), detections[c].copy(), ts, ts)
            self._tracks[track.id] = track
            ids[c] = track.id
            started.append(track.id)
        looked = covered(predicted, scanned)
        missed = []
        for r, track in enumerate(tracks):
            if r in matched_tracks:
                continue
            if looked[r]:
                track.misses += 1
                missed.append(track.id)
        return TrackUpdate(ids, started, ended, missed)

    def _reacquire(self, ts: float, tracks: list[Track], predicted: np.ndarray, detections: np.ndarray,
                   ids: np.ndarray, matched_tracks: set[int]) -> None:
        """Assign left-over detections to lost tracks (missed last time) by centre distance."""
        lost = [r for r, t in enumerate(tracks) if r not in matched_tracks and t.misses > 0]
        free = np.flatnonzero(ids == 0)
        if not lost or not len(free) or self.params.reacquire_distance == 0:
            return
        # From where the face was last seen: a velocity measured on jittery boxes says little about
        # where a face went while the detector could not see it.
        track_boxes, det_boxes = np.array([tracks[r].box for r in lost]), detections[free]
        size = np.maximum(track_boxes[:, 2:3], track_boxes[:, 3:4])
        distance = np.linalg.norm(_centres(track_boxes)[:, None, :] - _centres(det_boxes)[None, :, :], axis=2) / size
        ratio = np.maximum(det_boxes[None, :, 2], 1) / np.maximum(track_boxes[:, 2:3], 1)
        allowed = (distance <= self.params.reacquire_distance) & (ratio <= 1.5) & (ratio >= 1 / 1.5)
        rows, cols = linear_sum_assignment(np.where(allowed, distance, 1e6))
        for r, c in zip(rows, cols):
            if allowed[r, c]:
                track = tracks[lost[r]]
                self._observe(track, ts, detections[free[c]])
                ids[free[c]] = track.id
                matched_tracks.add(lost[r])

    def _observe(self, track: Track, ts: float, box: np.ndarray) -> None:
        dt = ts - track.last_seen
        if dt > 0:
            measured = (box - track.box) / dt
            measured[2:] = 0.0
            w = self.params.velocity_weight if track.hits > 1 else 1.0
            track.velocity = (1 - w) * track.velocity + w * measured
        track.box = box.copy()
        track.last_seen = ts
        track.hits += 1
        track.misses = 0
