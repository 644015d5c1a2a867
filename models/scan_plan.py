"""``ScanPlan`` and ``ScanPlanner``: which parts of a frame the face detector scans.

A full Haar scan of every frame is what held the service to one live stream on two cores. Like
the systems that serve many cameras (DeepStream's detector ``interval``, FaceStream's full
detection every 7th frame, Frigate's motion regions), a stream here scans the whole frame only
now and then, and in between only *regions*: each live track's predicted box grown by a margin,
scanned for faces of about the track's size (``minSize``/``maxSize`` close to it, so the Haar
pyramid has few levels), plus, optionally, areas where something moved outside the tracks.

The planner decides a full scan when
- ``full_scan_every`` frames have passed since the last one (faces that appear without moving,
  or that the last full scan missed, are found at the latest then);
- there are no tracks and motion is off (nothing tells where to look);
- a track went unmatched in ``full_scan_after_misses`` scans in a row that covered it (it may
  have moved further than its region reached);
- motion covers at least ``motion_full_scan_share`` of the frame (a cut, a pan, the lights);
- the regions would cover at least ``full_scan_area_share`` of the frame (a full scan, with the
  detector's ``downscale``, then costs less than the regions at full resolution).

Between full scans a track's region need not be scanned in every frame either. With
``region_scan_every`` above 1 a track that its last scan found, recently, is *carried* on the frames
between its region scans: the plan holds its predicted box, which the detector returns as found
without scanning, so the face is still classified in every frame (DeepStream's tracker carries
objects between inference intervals in the same way). A track the detector missed is scanned in
every frame until it is found again or lost, and motion regions outside the tracks are scanned in
every frame, so a face entering the scene waits for no interval. With ``scan_lost_tracks`` off, a
track whose loss already caused its full scan is no longer searched in a region of its own: that
full scan looked for it everywhere, and motion or the next periodic scan finds it if it comes back.

A plan is a small value that travels with its frame, so any detector can run any frame's plan and
the detector pool stays stateless; the planner's state lives with the stream (one per stream).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fervid.models.motion import Motion

@dataclass(frozen=True)
class PlanParams:
    full_scan_every: int = 30
    """Frames from one full scan to the next at most (1: every frame is a full scan)."""
    region_margin: float = 0.5
    """Added on every side of a track's predicted box, as a share of its size."""
    size_ratio: float = 1.5
    """A region is scanned for faces between ``size / ratio`` and ``size * ratio`` pixels."""
    full_scan_after_misses: int = 2
    motion: bool = True
    """Scan regions where something moved outside the tracks."""
    motion_full_scan_share: float = 0.25
    full_scan_area_share: float = 0.5
    min_size: int = 30
    """Smallest face searched for in a motion region (the full scan's ``min_size``)."""
    region_face_px: int = 36
    """Shrink each region so its smallest face measures this many pixels before scanning (0: scan
    at full resolution). Haar's cost grows with the scanned positions at every pyramid level, and
    a face of 100 pixels is found about as well at half the size."""
    region_scan_every: int = 1
    """Frames from one region scan of the tracks to the next (1: every frame). On the frames in
    between, tracks found in their last scan are carried: their predicted boxes stand for faces."""
    scan_lost_tracks: bool = True
    """Keep scanning the region of a track whose loss already caused a full scan, until it ends."""

    def __post_init__(self) -> None:
        if self.full_scan_every < 1:
            raise ValueError(f"full_scan_every must be >= 1, got {self.full_scan_every}")
        if self.region_scan_every < 1:
            raise ValueError(f"region_scan_every must be >= 1, got {self.region_scan_every}")
        if self.region_margin < 0:
            raise ValueError(f"region_margin must be >= 0, got {self.region_margin}")
        if self.size_ratio <= 1:
            raise ValueError(f"size_ratio must be > 1, got {self.size_ratio}")
        if self.full_scan_after_misses < 1:
            raise ValueError(f"full_scan_after_misses must be >= 1, got {self.full_scan_after_misses}")
        if self.region_face_px and self.region_face_px < 24:
            raise ValueError(f"region_face_px must be 0 or >= 24 (the cascade's window), got {self.region_face_px}")
        if not 0 < self.full_scan_area_share <= 1:
            raise ValueError(f"full_scan_area_share must be in (0, 1], got {self.full_scan_area_share}")
        if not 0 < self.motion_full_scan_share <= 1:
            raise ValueError(f"motion_full_scan_share must be in (0, 1], got {self.motion_full_scan_share}")


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.int32)


def _no_ids() -> np.ndarray:
    return np.zeros(0, np.int64)


@dataclass(frozen=True)
class ScanPlan:
    """What to scan in one frame: everything (``full``), or ``regions`` (N x 4 int32, x y w h),
    region ``i`` for faces of ``min_sizes[i]`` to ``max_sizes[i]`` pixels (0: no upper limit);
    and the boxes of tracks ``carried`` through the frame without a scan."""

    full: bool
    regions: np.ndarray
    min_sizes: np.ndarray
    max_sizes: np.ndarray
    reason: str
    """Why: ``periodic``, ``no tracks``, ``track lost``, ``motion``, ``large regions`` (full scans),
    ``tracks`` or ``motion`` (regions), ``carry`` (tracks carried, nothing scanned), or ``off``
    (tracking disabled)."""
    face_px: int = 0
    """``PlanParams.region_face_px``: the detector shrinks regions to it (0: full resolution)."""
    carried: np.ndarray = field(default_factory=_no_boxes)
    """Predicted boxes (N x 4 int32) of tracks carried through this frame: the detector returns
    them as faces without scanning for them."""
    carried_ids: np.ndarray = field(default_factory=_no_ids)
    """The track of each carried box."""

    @classmethod
    def full_scan(cls, reason: str) -> "ScanPlan":
        empty = np.zeros(0, np.int32)
        return cls(True, _no_boxes(), empty, empty, reason)

    @property
    def areas(self) -> np.ndarray | None:
        """The scanned areas as the tracker takes them (``None``: the whole frame)."""
        return None if self.full else self.regions

    def pixels(self, width: int, height: int) -> int:
        """Pixels of the frame the plan scans (at full resolution)."""
        if self.full:
            return int(width) * int(height)
        return int(np.sum(self.regions[:, 2].astype(np.int64) * self.regions[:, 3]))

    def __len__(self) -> int:
        return len(self.regions)


def grow(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Boxes (float x y w h) grown by ``margin`` of their size on every side, clipped to the frame."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    pad = boxes[:, 2:] * margin
    x0 = np.clip(boxes[:, 0] - pad[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1] - pad[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2] + pad[:, 0], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3] + pad[:, 1], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def merge_overlapping(regions: np.ndarray, min_sizes: np.ndarray, max_sizes: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace regions that overlap by their bounding box (sizes: the widest range), until none
    overlap, so that no area is scanned twice and no face is found twice."""
    items = [(r.astype(np.float64), int(lo), int(hi)) for r, lo, hi in zip(regions, min_sizes, max_sizes)]
    merged = True
    while merged and len(items) > 1:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i][0], items[j][0]
                if (a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]):
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                    hi = 0 if 0 in (items[i][2], items[j][2]) else max(items[i][2], items[j][2])
                    items[i] = (np.array([x0, y0, x1 - x0, y1 - y0]), min(items[i][1], items[j][1]), hi)
                    del items[j]
                    merged = True
                    break
            if merged:
                break
    if not items:
        return np.zeros((0, 4), np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32)
    # Round the corners, not x y w h one by one, so boxes that did not overlap still do not.
    corners = np.array([[r[0], r[1], r[0] + r[2], r[1] + r[3]] for r, _, _ in items])
    corners = np.round(corners)
    boxes = np.column_stack([corners[:, :2], corners[:, 2:] - corners[:, :2]]).astype(np.int32)
    return boxes, np.array([lo for _, lo, _ in items], np.int32), np.array([hi for _, _, hi in items], np.int32)


class ScanPlanner:
    """The scan plans of one stream, made in frame order."""

    def __init__(self, params: PlanParams | None = None):
        self.params = params or PlanParams()
        self._since_full: int | None = None
        self._since_regions = 0
        """Frames since the tracks' regions were last scanned (a full scan counts)."""
        self._rescanned: set[int] = set()
        """Tracks whose loss already caused a full scan (one per loss, not one per frame)."""

    def plan(self, width: int, height: int, tracks: np.ndarray, track_ids: np.ndarray,
             lost: set[int] | frozenset[int] = frozenset(), motion: Motion | None = None,
             fresh: np.ndarray | None = None) -> ScanPlan:
        """The plan for the next frame.

        ``tracks``: predicted boxes (N x 4) of the live tracks at the frame's time, with their
        ``track_ids``; ``lost``: ids of tracks missed ``full_scan_after_misses`` times in a row;
        ``fresh``: which tracks their last scan found, recently enough to be carried (``None``:
        none, so every track is scanned).
        """
        p = self.params
        tracks = np.asarray(tracks, np.float64).reshape(-1, 4)
        track_ids = np.asarray(track_ids, np.int64).reshape(-1)
        self._rescanned &= set(lost)  # found again (or ended): its next loss rescans again
        newly_lost = set(lost) - self._rescanned
        reason = None
        if self._since_full is None or self._since_full + 1 >= p.full_scan_every:
            reason = "periodic"
        elif not len(tracks) and not p.motion:
            reason = "no tracks"
        elif newly_lost:
            reason = "track lost"
        elif p.motion and motion is not None and motion.changed >= p.motion_full_scan_share:
            reason = "motion"
        if reason is not None:
            self._full_scan_done()
            self._rescanned |= set(lost)
            return ScanPlan.full_scan(reason)
        self._since_full += 1
        self._since_regions += 1
        carry = np.zeros(len(tracks), bool)
        if fresh is not None and self._since_regions < p.region_scan_every:
            carry = np.asarray(fresh, bool).reshape(-1)
        scan = ~carry
        if not p.scan_lost_tracks:
            scan &= ~np.isin(track_ids, list(self._rescanned))
        sizes = np.maximum(tracks[:, 2], tracks[:, 3])
        around = grow(tracks, p.region_margin, width, height)
        regions = around[scan]
        min_sizes = np.floor(sizes / p.size_ratio)[scan]
        max_sizes = np.ceil(sizes * p.size_ratio)[scan]
        moved = False
        if p.motion and motion is not None and len(motion.boxes):
            outside = _outside(motion.boxes, around)
            moved = bool(len(outside))
            if moved:
                regions = np.concatenate([regions, outside.astype(np.float64)])
                min_sizes = np.concatenate([min_sizes, np.full(len(outside), p.min_size)])
                max_sizes = np.concatenate([max_sizes, np.zeros(len(outside))])
        keep = (regions[:, 2] >= np.maximum(min_sizes, 1)) & (regions[:, 3] >= np.maximum(min_sizes, 1))
        boxes, lo, hi = merge_overlapping(regions[keep], min_sizes[keep], max_sizes[keep])
        if np.sum(boxes[:, 2].astype(np.int64) * boxes[:, 3]) >= p.full_scan_area_share * width * height:
            self._full_scan_done()
            return ScanPlan.full_scan("large regions")
        if not carry.any():
            self._since_regions = 0
        reason = "motion" if moved else ("carry" if carry.any() and not scan.any() else "tracks")
        return ScanPlan(False, boxes, lo, hi, reason, p.region_face_px,
                        carried=_carried_boxes(tracks[carry], width, height), carried_ids=track_ids[carry])

    def _full_scan_done(self) -> None:
        self._since_full = 0
        self._since_regions = 0


def _carried_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Predicted boxes as the detector would give them: whole pixels, inside the frame."""
    boxes = np.round(np.asarray(boxes, np.float64).reshape(-1, 4))
    x0 = np.clip(boxes[:, 0], 0, width - 1)
    y0 = np.clip(boxes[:, 1], 0, height - 1)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], x0 + 1, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], y0 + 1, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)


def _outside(motion_boxes: np.ndarray, regions: np.ndarray, covered_share: float = 0.5) -> np.ndarray:
    """Motion boxes less than ``covered_share`` inside the track regions (motion of a known face is
    already scanned)."""
    motion_boxes = np.asarray(motion_boxes, np.float64).reshape(-1, 4)
    if not len(regions):
        return motion_boxes
    m = motion_boxes[:, None, :]
    ix = np.clip(np.minimum(m[..., 0] + m[..., 2], regions[:, 0] + regions[:, 2]) - np.maximum(m[..., 0], regions[:, 0]), 0, None)
    iy = np.clip(np.minimum(m[..., 1] + m[..., 3], regions[:, 1] + regions[:, 3]) - np.maximum(m[..., 1], regions[:, 1]), 0, None)
    inside = (ix * iy).sum(axis=1) / np.maximum(motion_boxes[:, 2] * motion_boxes[:, 3], 1)
    return motion_boxes[inside < covered_share]
