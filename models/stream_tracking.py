"""``StreamTracking``: one video stream's tracks, scan plans and smoothed expressions.

Every path that reads video (the service's capture actors, the desktop app, ``fervid analyze``)
holds one of these per stream, so they share one tracker, one planner and one smoother. Two calls
drive it, each in frame order:

- ``plan(ts, image)`` before detection: motion, the live tracks' predicted boxes, and the plan;
- ``apply(ts, plan, faces)`` after classification: detections to tracks, each face's track id and
  smoothed row.

In the service the two orders are the same but run apart: a frame's plan is made when it is read,
its ``apply`` when its results come back, with up to ``max_in_flight`` frames between. The regions'
margins absorb that lag; the tracker does not count a miss where a plan did not look. With
``enabled = False`` every plan is a full scan and faces come back untouched (no ids, no smoothing):
the behaviour before tracking, kept for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fervid.models.face_detector import DetectorParams
from fervid.models.faces import Faces
from fervid.models.motion import MotionDetector
from fervid.models.scan_plan import PlanParams, ScanPlan, ScanPlanner
from fervid.models.smoothing import ExpressionSmoother
from fervid.models.tracker import FaceTracker, TrackerParams


@dataclass(frozen=True)
class TrackingParams:
    enabled: bool = True
    plan: PlanParams = field(default_factory=PlanParams)
    tracker: TrackerParams = field(default_factory=TrackerParams)
    smoothing_half_life_s: float = 0.5
    """Half-life of the expression average (0: no smoothing)."""


def tracking_params_for(detector: DetectorParams) -> TrackingParams:
    """Tracking for a reader that runs ``detector`` in-process (the app, ``fervid analyze``): the
    defaults, except that motion regions are searched down to the detector's own smallest face, so a
    region scan looks for every face a full scan would. One rule, so that a video analysed offline
    gets the tracks the app shows for it."""
    return TrackingParams(plan=PlanParams(min_size=detector.min_size))


@dataclass
class TrackingCounts:
    """Totals since the stream started (the service turns their growth into metrics)."""

    frames: int = 0
    full_scans: int = 0
    region_scans: int = 0
    """Regions scanned, summed over frames (a frame with two regions counts two)."""
    pixels_scanned: int = 0
    frame_pixels: int = 0
    """Pixels of every planned frame: what full scans of them all would have covered."""
    tracks_started: int = 0
    tracks_ended: int = 0
    boxes_carried: int = 0
    """Track boxes carried through frames without a scan (``PlanParams.region_scan_every``)."""

    @property
    def scanned_share(self) -> float:
        """Share of the frames' pixels the plans covered (1.0: full scans only, or no frame yet)."""
        return self.pixels_scanned / self.frame_pixels if self.frame_pixels else 1.0


class StreamTracking:
    """Tracks, plans and smoothing for one stream. ``plan`` and ``apply`` may run on different
    threads, but each must be called in frame order, and not concurrently with itself."""

    def __init__(self, params: TrackingParams | None = None):
        self.params = params or TrackingParams()
        self._planner = ScanPlanner(self.params.plan)
        self._tracker = FaceTracker(self.params.tracker)
        self._smoother = ExpressionSmoother(self.params.smoothing_half_life_s)
        self._motion = MotionDetector() if self.params.plan.motion else None
        self.counts = TrackingCounts()
        self._snapshot = _Snapshot(0.0, np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0),
                                   self.params.tracker.predict_horizon_s, frozenset(), np.zeros(0, bool))

    @property
    def enabled(self) -> bool:
        return self.params.enabled

    @property
    def tracks_alive(self) -> int:
        return len(self._snapshot.ids)

    def plan(self, ts: float, image: np.ndarray) -> ScanPlan:
        """The scan plan for the frame read at ``ts``."""
        height, width = image.shape[:2]
        if not self.enabled:
            plan = ScanPlan.full_scan("off")
        else:
            motion = self._motion.update(image) if self._motion is not None else None
            tracks = self._snapshot
            plan = self._planner.plan(width, height, tracks.at(ts), tracks.ids, tracks.lost, motion,
                                      tracks.fresh_at(ts))
        self.counts.frames += 1
        self.counts.full_scans += int(plan.full)
        self.counts.region_scans += len(plan)
        self.counts.boxes_carried += len(plan.carried)
        self.counts.pixels_scanned += plan.pixels(width, height)
        self.counts.frame_pixels += width * height
        return plan

    def apply(self, ts: float, plan: ScanPlan, faces: Faces) -> Faces:
        """The frame's classified faces with their track ids and smoothed rows."""
        if not self.enabled:
            return faces
        tracked = self.track(ts, plan, faces.boxes)
        smoothed = self.smooth(tracked, faces.probabilities) if faces.probabilities is not None else None
        return faces.with_tracks(tracked.ids, smoothed)

    def track(self, ts: float, plan: ScanPlan, boxes: np.ndarray) -> "Tracked":
        """``apply``'s first half: the frame's detected boxes to tracks (ids in box order).

        Only boxes steer the tracks and the next plan, so a reader that classifies many frames'
        faces in one batch (``fervid analyze``) tracks each frame as soon as it is detected and
        smooths later, in the same frame order, with :meth:`smooth`."""
        boxes = np.asarray(boxes).reshape(-1, 4)
        carried_ids = _carried_ids(boxes, plan)
        detected = carried_ids == 0
        # Carried boxes are the tracks' own predictions: they neither move nor refresh a track.
        update = self._tracker.update(ts, boxes[detected], plan.areas)
        ids = carried_ids.copy()
        ids[detected] = update.ids
        self.counts.tracks_started += len(update.started)
        self.counts.tracks_ended += len(update.ended)
        self._publish_snapshot(ts)
        return Tracked(ts, ids, tuple(update.ended))

    def smooth(self, tracked: "Tracked", probabilities: np.ndarray) -> np.ndarray:
        """``apply``'s second half: the smoothed rows of a frame :meth:`track` returned (frames in
        the order they were tracked; ``probabilities`` in the order of its boxes)."""
        self._smoother.forget(tracked.ended)
        return self._smoother.update(tracked.ts, tracked.ids, probabilities)

    def _publish_snapshot(self, ts: float) -> None:
        """Hand the tracks to ``plan`` (which may run on another thread) as one tuple swap."""
        tracks = self._tracker.tracks
        after = self.params.plan.full_scan_after_misses
        horizon = self.params.tracker.predict_horizon_s
        self._snapshot = _Snapshot(
            ts, np.array([t.id for t in tracks], np.int64),
            np.array([t.box for t in tracks], np.float64).reshape(-1, 4),
            np.array([t.velocity for t in tracks], np.float64).reshape(-1, 4),
            np.array([t.last_seen for t in tracks], np.float64), horizon,
            frozenset(t.id for t in tracks if t.misses >= after),
            np.array([t.misses == 0 for t in tracks], bool))


@dataclass(frozen=True)
class Tracked:
    """One frame's boxes matched to tracks, waiting for its probabilities (``StreamTracking.smooth``)."""

    ts: float
    ids: np.ndarray
    """The track of each box, in box order."""
    ended: tuple[int, ...]
    """Tracks that ended at this frame: their smoothing state is dropped."""


@dataclass(frozen=True)
class _Snapshot:
    """The live tracks as ``apply`` left them, for ``plan``: replaced whole, never changed."""

    ts: float
    ids: np.ndarray
    boxes: np.ndarray
    """Each track's box where it was last seen."""
    velocities: np.ndarray
    last_seen: np.ndarray
    horizon_s: float
    lost: frozenset[int]
    found_last: np.ndarray
    """Which tracks their last scan found (no miss since)."""

    def fresh_at(self, ts: float) -> np.ndarray:
        """Tracks that may be carried through the frame at ``ts``: found by their last scan, and
        seen within the prediction horizon (beyond it the prediction stops moving with the face)."""
        return self.found_last & (ts - self.last_seen <= self.horizon_s)

    def at(self, ts: float) -> np.ndarray:
        """The boxes predicted for ``ts`` as the tracker predicts them (a plan is made for a frame
        newer than the last result)."""
        elapsed = np.clip(ts - self.last_seen, 0.0, self.horizon_s)
        return self.boxes + self.velocities * elapsed[:, None]


def _carried_ids(boxes: np.ndarray, plan: ScanPlan) -> np.ndarray:
    """For each box, the track the plan carried it for, or 0 where the detector found it. The
    detector returns carried boxes as the plan gave them, so equal rows are the carried ones."""
    ids = np.zeros(len(boxes), np.int64)
    if not len(plan.carried) or not len(boxes):
        return ids
    same = (np.asarray(boxes, np.int64)[:, None, :] == np.asarray(plan.carried, np.int64)[None, :, :]).all(axis=2)
    rows, cols = np.nonzero(same)
    ids[rows] = np.asarray(plan.carried_ids, np.int64)[cols]
    return ids
