"""``analyse_videos``: the driver of ``fervid analyze``: segments of many videos through one pool.

The segments of every video go to the pool together, video after video, so that short videos run
side by side and a long one fills every worker; the pool keeps at most two per worker in flight.
Results come back in completion order; each video's are held until their turn, then joined to the
previous segment's tracks, smoothed and committed to the video's results store strictly in segment
order, so an interruption leaves a prefix of whole segments that a rerun continues.

Smoothing runs here, not in the workers: a track's moving average must see the track's rows in frame
order across segment borders, under its global id. One ``ExpressionSmoother`` per video is fed frame
by frame, so the smoothed rows are those one pass over the whole video gives for the same tracks.

Memory: the pool holds at most two segments per worker in flight, and results waiting for an earlier
segment are rows of faces (a few kilobytes per second of video), never frames.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.results_store import ResultsStore
from fervid.analysis.segment_worker import SegmentResult
from fervid.analysis.segments import AnalysisOptions, Segment, split
from fervid.analysis.track_join import join_tracks
from fervid.analysis.video_file import VideoInfo
from fervid.errors import VideoError
from fervid.models.smoothing import ExpressionSmoother
from fervid.models.stream_tracking import TrackingCounts

REPLAY_HALF_LIVES = 5
"""After a resume, the smoother is rebuilt from the committed rows of the last ``ceil(5 half-lives)``
seconds before the resume point (the state it had there is not stored). An approximation: a track
seen before that window starts its rebuilt average at its first row in the window, where the true
average still carried its older rows; their weight there is at most 2**-5 (about 3%), and it halves
again every half-life after. Tracks that started inside the window are rebuilt exactly."""


class AnalysisPool(Protocol):
    """Runs segments; :class:`~fervid.analysis.in_process_pool.InProcessPool` or
    :class:`fervid.services.analysis_pool.RayAnalysisPool`."""

    workers: int

    def run(self, segments: Iterable[Segment], on_frames: Callable[[Segment, int], None] | None = None
            ) -> Iterator[tuple[Segment, SegmentResult | VideoError]]:
        """Each segment (the object given) with its result or the ``VideoError`` that ended it, in
        completion order; ``segments`` is read lazily, at most ``2 * workers`` in flight."""


@dataclass(frozen=True)
class VideoJob:
    info: VideoInfo
    store: ResultsStore
    """The video's output folder, opened by the caller with ``options.settings()``."""
    options: AnalysisOptions


@dataclass(frozen=True)
class VideoOutcome:
    info: VideoInfo
    store: ResultsStore
    summary: dict | None
    """summary.json's content (also for a skipped video); ``None`` after an error."""
    error: str | None
    """The one line that ended this video (its committed rows stay for a rerun to continue)."""
    skipped: bool
    """The folder already held finished results: nothing was analysed."""
    frames_analysed: int
    """Frames analysed by this run (a resumed run counts only its own)."""
    wall_s: float
    frames_per_s: float
    x_real_time: float


def smooth_rows(smoother: ExpressionSmoother, rows: FaceRows) -> FaceRows:
    """``rows`` (global ids, frame order) with ``smoothed`` from ``smoother``, fed frame by frame."""
    smoothed = np.empty_like(rows.probabilities)
    starts = np.flatnonzero(np.r_[True, rows.frame[1:] != rows.frame[:-1]]) if len(rows) else []
    for start, stop in zip(starts, [*starts[1:], len(rows)]):
        smoothed[start:stop] = smoother.update(float(rows.time_s[start]), rows.track[start:stop],
                                               rows.probabilities[start:stop])
    return FaceRows(rows.frame, rows.time_s, rows.track, rows.boxes, rows.probabilities, smoothed)


class _VideoRun:
    """One video's progress through a run: its pending segments, held results, tracks and smoother."""

    def __init__(self, job: VideoJob, workers: int):
        self.job = job
        self.workers = workers
        self.segments = split(job.info, job.options)
        self.pending = self.segments[job.store.segments_done:]
        self.held: dict[int, SegmentResult] = {}
        self.error: str | None = None
        self.summary: dict | None = None
        self.frames_analysed = 0
        self.frames_covered = 0
        self.scans = TrackingCounts()
        self.began: float | None = None
        self.ended: float | None = None
        self.smoother = ExpressionSmoother(job.options.tracking.smoothing_half_life_s)
        self.tail = FaceRows.empty()
        self._smoothed_ids: set[int] = set()

    @property
    def open(self) -> bool:
        return not self.job.store.complete and self.error is None

    def segments_to_run(self) -> Iterator[Segment]:
        """The pending segments, as the pool asks for them; none once the video has failed."""
        if self.job.store.complete:
            return
        if self.job.store.segments_done and self.pending:
            self._rebuild(self.pending[0])
        for segment in self.pending:
            if self.error is not None:
                return
            if self.began is None:
                self.began = time.perf_counter()
            yield segment
        if not self.pending:  # interrupted after its last segment, before the reports
            self.began = time.perf_counter()
            self._finish()

    def _rebuild(self, first: Segment) -> None:
        """Tracks and smoothing as they stood after the last committed segment (REPLAY_HALF_LIVES)."""
        window_s = math.ceil(REPLAY_HALF_LIVES * self.smoother.half_life_s)
        replay_from = first.start - math.ceil(window_s * self.job.info.fps)
        committed = self.job.store.rows_from(min(first.warmup_start, replay_from))
        smooth_rows(self.smoother, committed.take(committed.frame >= replay_from))
        self._smoothed_ids = set(committed.track.tolist())
        self._keep_tail(committed, first)

    def _keep_tail(self, rows: FaceRows, following: Segment) -> None:
        """Keep the rows the next segment is joined on; forget the smoothing of every other track
        (no later segment can continue it)."""
        self.tail = rows.take(rows.frame >= following.warmup_start)
        alive = set(self.tail.track.tolist())
        self.smoother.forget(self._smoothed_ids - alive)
        self._smoothed_ids = alive

    def receive(self, result: SegmentResult | VideoError) -> None:
        if isinstance(result, VideoError):
            self.error = str(result)
            self.ended = time.perf_counter()
            self.held.clear()
            return
        self.held[result.index] = result
        store = self.job.store
        while store.segments_done in self.held:
            self._append(self.held.pop(store.segments_done))
        if store.segments_done == len(self.segments):
            self._finish()

    def _append(self, result: SegmentResult) -> None:
        store = self.job.store
        warmup = result.warmup_rows
        joined, next_id = join_tracks(self.tail, warmup, result.rows, store.next_track_id)
        rows = smooth_rows(self.smoother, joined)
        self._smoothed_ids |= set(rows.track.tolist())
        store.append(result.index, rows, store.frames_analysed + result.frames_analysed, next_id)
        self.frames_analysed += result.frames_analysed
        self.frames_covered += result.stop - result.start
        for name in (f.name for f in fields(TrackingCounts)):
            setattr(self.scans, name, getattr(self.scans, name) + getattr(result.scans, name))
        if result.index + 1 < len(self.segments):
            self._keep_tail(rows, self.segments[result.index + 1])

    def _finish(self) -> None:
        self.ended = time.perf_counter()
        speed = {**self._speed(), "workers": self.workers,
                 "full_scan_share": self.scans.full_scans / self.scans.frames if self.scans.frames else None,
                 "scanned_share": self.scans.scanned_share}
        self.summary = self.job.store.finish(speed)

    def _speed(self) -> dict:
        wall = (self.ended - self.began) if self.began is not None and self.ended is not None else 0.0
        return {"frames_per_s": self.frames_analysed / wall if wall > 0 else 0.0,
                "x_real_time": self.frames_covered / self.job.info.fps / wall if wall > 0 else 0.0, "wall_s": wall}

    def outcome(self) -> VideoOutcome:
        store = self.job.store
        skipped = self.began is None and store.complete
        summary = json.loads(store.summary_json.read_text(encoding="utf-8")) if skipped else self.summary
        return VideoOutcome(self.job.info, store, summary, self.error, skipped, self.frames_analysed, **self._speed())


def analyse_videos(jobs: list[VideoJob], pool: AnalysisPool,
                   on_progress: Callable[[str, int], None] | None = None) -> list[VideoOutcome]:
    """Analyse every job's pending segments with ``pool`` and finish each video's reports; one
    outcome per job, in the jobs' order. A ``VideoError`` ends only its own video;
    ``on_progress(video path, n)``: ``n`` more frames analysed (for a progress bar)."""
    runs = [_VideoRun(job, pool.workers) for job in jobs]
    owner: dict[int, _VideoRun] = {}

    def feed() -> Iterator[Segment]:
        for run in runs:
            for segment in run.segments_to_run():
                owner[id(segment)] = run
                yield segment

    def on_frames(segment: Segment, n: int) -> None:
        if on_progress is not None:
            on_progress(segment.video, n)

    for segment, result in pool.run(feed(), on_frames):
        run = owner.pop(id(segment))
        if run.open:
            run.receive(result)
    return [run.outcome() for run in runs]
