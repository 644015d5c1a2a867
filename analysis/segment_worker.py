"""``analyse_segment``: one segment of a video read, scanned, tracked and classified in batches.

A worker reads its segment's frames in order from its warm-up on, and runs on each analysed frame
what the app and the service run: the stream's scan plan, the detector on that plan, the tracker.
Classification waits until ``batch_frames`` frames have faces pending and then runs once for all
of them: Mini-Xception costs far less per face in one large call than in many small ones. Only the
pending crops are held, never frames, so memory does not grow with the segment.

The three stages run side by side, each on its own thread (:mod:`fervid.analysis.stages`): a
reader decodes frames ahead of detection, and classification of one batch runs while the next
frames are scanned. OpenCV's decoder and cascade and TensorFlow all release the GIL, and a region
scan keeps about one core busy, so on two cores decoding and classifying fill the other one instead
of waiting their turn. The queues between the stages are short, so memory stays bounded.

The worker does not smooth: tracks are renumbered when segments are joined, and smoothing must
run over a whole track in frame order, so the driver smooths (:mod:`fervid.analysis.runner`).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.segments import Segment
from fervid.analysis.stages import BackgroundCalls, FrameReader
from fervid.analysis.video_file import open_video
from fervid.errors import VideoError
from fervid.models.classifier import EmotionClassifier
from fervid.models.preprocessing import crop_faces, to_grey
from fervid.models.recognizer import Recognizer
from fervid.models.stream_tracking import StreamTracking, TrackingCounts

PROGRESS_EVERY = 8
"""Analysed frames between two progress reports at most (a bar that moves, at little cost)."""


@dataclass(frozen=True)
class SegmentResult:
    index: int
    start: int
    stop: int
    frames_analysed: int
    """Frames of ``[start, stop)`` analysed (warm-up frames not counted)."""
    rows: FaceRows
    """Faces of the frames in ``[start, stop)``, with this segment's own track ids (from 1) and
    ``smoothed`` a copy of ``probabilities`` (the driver smooths after joining)."""
    warmup_rows: FaceRows
    """Faces of the warm-up frames ``[warmup_start, start)``, same ids (to join tracks on)."""
    seconds: float
    scans: TrackingCounts
    """The scan plans' totals over every analysed frame, warm-up included (for the speed report)."""


def in_reading_order(boxes: np.ndarray) -> np.ndarray:
    """Boxes sorted by x, then y, w, h. OpenCV's cascade returns a frame's faces in an order that
    depends on its thread count (the actors run one thread, an app or a test process several), and
    new tracks take their ids in box order: sorted, a segment gives the same rows wherever it runs."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return boxes[np.lexsort(boxes.T[::-1])]


def video_ended(segment: Segment, frame: int) -> VideoError:
    return VideoError(f"{segment.video}: the video ends at frame {frame}, before the {segment.info.frames} frames "
                      "its header states (truncated or damaged)")


def open_at(segment: Segment) -> cv2.VideoCapture:
    """The segment's video, positioned so that the next frame read is ``warmup_start``.

    OpenCV's FFmpeg reader seeks exactly on the codecs checked (H.264, MJPG, MPEG-4 Part 2: the
    frames after a seek equal those read from the start, tests/analysis/test_segment_worker.py).
    When the reader does not land where it was asked (a file cut before that frame, or a container
    it cannot seek in), the frames are grabbed from the start instead, which also finds where a
    cut file ends."""
    cap = open_video(segment.video)
    if not cap.isOpened():
        raise VideoError(f"{segment.video}: cannot be opened any more (moved, deleted or damaged)")
    target = segment.warmup_start
    if target == 0 or (cap.set(cv2.CAP_PROP_POS_FRAMES, target) and cap.get(cv2.CAP_PROP_POS_FRAMES) == target):
        return cap
    cap.release()
    cap = open_video(segment.video)
    for frame in range(target):
        if not cap.grab():
            cap.release()
            raise video_ended(segment, frame)
    return cap


@dataclass
class _PendingFrames:
    """Analysed frames whose faces wait for one classifier call."""

    frames: list[tuple[int, float, np.ndarray, np.ndarray]] = field(default_factory=list)
    """(index, ts, boxes, track ids) per frame."""
    crops: list[np.ndarray] = field(default_factory=list)

    def add(self, index: int, ts: float, boxes: np.ndarray, ids: np.ndarray, crops: np.ndarray) -> None:
        self.frames.append((index, ts, boxes, ids))
        self.crops.append(crops)

    def take(self) -> "_PendingFrames":
        """The pending frames as a batch of their own, leaving nothing pending (the batch may be
        classified on another thread while new frames are added here)."""
        batch = _PendingFrames(self.frames, self.crops)
        self.frames, self.crops = [], []
        return batch

    def classify(self, classifier: EmotionClassifier) -> list[FaceRows]:
        """One call for every pending face; the frames' rows (smoothed = raw)."""
        probabilities = classifier.predict(np.concatenate(self.crops)) if self.crops else None
        rows, offset = [], 0
        for index, ts, boxes, ids in self.frames:
            p = probabilities[offset:offset + len(boxes)]
            offset += len(boxes)
            rows.append(FaceRows(np.full(len(boxes), index), np.full(len(boxes), ts), ids, boxes, p, p))
        return rows


class _Progress:
    """Counts analysed frames and hands them on every ``PROGRESS_EVERY``."""

    def __init__(self, on_frames: Callable[[int], None] | None):
        self._on_frames = on_frames
        self._unreported = 0

    def add(self) -> None:
        self._unreported += 1
        if self._unreported >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._on_frames is not None and self._unreported:
            self._on_frames(self._unreported)
        self._unreported = 0


def analyse_segment(recognizer: Recognizer, segment: Segment,
                    on_frames: Callable[[int], None] | None = None) -> SegmentResult:
    """Analyse ``segment`` from its warm-up to its stop. ``VideoError`` when the video ends early;
    ``on_frames(n)``: ``n`` more frames of ``[start, stop)`` analysed (at most every 8 frames)."""
    options = segment.options
    if recognizer.detector.params != options.detector:
        raise ValueError(f"the recogniser's detector {recognizer.detector.params} is not the options' "
                         f"{options.detector}")
    began = time.perf_counter()
    tracking = StreamTracking(options.tracking)
    pending = _PendingFrames()
    progress = _Progress(on_frames)
    analysed = 0
    classify = lambda batch: batch.classify(recognizer.classifier)  # noqa: E731
    with FrameReader(open_at(segment), segment.warmup_start, segment.stop, options.every) as frames, \
            BackgroundCalls(classify) as classified:
        for index, image in frames:
            if image is None:
                raise video_ended(segment, index)
            ts = index / segment.info.fps
            grey = to_grey(image)
            plan = tracking.plan(ts, image)
            boxes = in_reading_order(recognizer.detector.detect_plan(grey, plan))
            tracked = tracking.track(ts, plan, boxes)
            pending.add(index, ts, boxes, tracked.ids, crop_faces(grey, boxes))
            if len(pending.frames) >= options.batch_frames:
                classified.submit(pending.take())
            if index >= segment.start:
                analysed += 1
                progress.add()
        classified.submit(pending.take())
        parts = [rows for batch_rows in classified.results() for rows in batch_rows]
        progress.flush()
    rows = FaceRows.concat(parts)
    written = rows.frame >= segment.start
    return SegmentResult(segment.index, segment.start, segment.stop, analysed, rows.take(written),
                         rows.take(~written), time.perf_counter() - began, tracking.counts)
