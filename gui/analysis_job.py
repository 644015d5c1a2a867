"""``AnalysisJob``: the app's "Analyze Video…": the engine of ``fervid analyze`` on a thread of its own.

Analysing a recorded video takes seconds to hours, so it never runs on the GUI thread. The job runs
the same steps as the command (probe the video, open its results folder, analyse the pending
segments, write the reports) in this process with the app's own recogniser (``InProcessPool``: the
gui may not use Ray), holding it for the whole run so that no upload or camera calls the cascade
at the same time (the window disables them anyway).

Stopping takes effect between segments: the segment running is finished and committed, no other
starts, so the folder keeps whole rows and the next analysis of the same video into the same folder
resumes after them (as an interrupted ``fervid analyze`` does). The analysis modules are imported
inside the job, after checking the ``analysis`` extra, so the app opens without matplotlib.
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PyQt5.QtCore import QThread, pyqtSignal

from fervid.errors import AnalysisOutputError, FervidError, VideoError
from fervid.extras import ANALYSIS, require
from fervid.gui.recognition_worker import SharedRecognizer, describe_error

if TYPE_CHECKING:
    from fervid.analysis.in_process_pool import InProcessPool
    from fervid.analysis.results_store import ResultsStore
    from fervid.analysis.segment_worker import SegmentResult
    from fervid.analysis.segments import Segment

DEFAULT_SEGMENT_S = 10.0
"""Seconds of video per segment, as ``fervid analyze`` (the unit of stopping and resuming; part of
the folder's settings, so the app resumes only folders made with the same length)."""


def default_out_dir(video: Path) -> Path:
    """Where the app writes a video's reports: ``<video folder>/<video name>_fervid/``."""
    return video.parent / f"{video.stem}_fervid"


@dataclass(frozen=True)
class AnalysisReport:
    """How an analysis ended: finished (now or by an earlier run) or stopped between segments."""

    video: Path
    out_dir: Path
    summary: dict | None
    """summary.json's content; ``None`` when stopped before the last segment."""
    timeline: np.ndarray | None
    """timeline.png as BGR, for the image view (``None`` when stopped)."""
    already_analysed: bool
    """The folder held finished results: nothing was analysed."""
    segments_done: int
    segments: int

    def status_line(self) -> str:
        """The window's one line: what was found, how fast, and where the reports are."""
        name = self.video.name
        if self.summary is None:
            return (f"Stopped {name}: {self.segments_done} of {self.segments} segments kept in {self.out_dir}; "
                    f"Analyze Video… on it again resumes after them.")
        video = self.summary["video"]
        found = f"{video['faces']} faces in {video['tracks']} tracks"
        if self.already_analysed:
            return f"{name}: already analysed in {self.out_dir}: {found} (its timeline is shown)."
        speed = video.get("speed") or {}
        return (f"{name}: {video['frames_analysed']} frames analysed, {found}, "
                f"{speed.get('frames_per_s', 0.0):.1f} frames/s ({speed.get('x_real_time', 0.0):.1f}x real time) "
                f"→ {self.out_dir}")


class _StoppablePool:
    """A pool fed until ``stop`` is set: the segment running then is finished and committed, and
    no further segment is taken (``analyse_videos`` then returns the video unfinished)."""

    def __init__(self, pool: InProcessPool, stop: threading.Event):
        self.pool = pool
        self.stop = stop
        self.workers = pool.workers

    def run(self, segments: Iterable[Segment], on_frames: Callable[[Segment, int], None] | None = None
            ) -> Iterator[tuple[Segment, SegmentResult | VideoError]]:
        return self.pool.run(self._until_stopped(segments), on_frames)

    def _until_stopped(self, segments: Iterable[Segment]) -> Iterator[Segment]:
        remaining = iter(segments)
        while not self.stop.is_set():  # asked before taking the next: taking one starts it
            segment = next(remaining, None)
            if segment is None:
                return
            yield segment


class AnalysisJob(QThread):
    """Analyse one video into ``out_dir`` with ``shared``'s recogniser.

    ``progress(frames analysed, of the video's total, this run's frames per second)`` as it goes (a
    resumed run starts at the committed frames); then ``done(AnalysisReport)``, or ``failed(message)``
    for a file that is not a video, a folder that cannot be written or holds another video's results,
    a video that ends early, or a model that cannot load. ``stop()`` ends it after its current segment.
    """

    progress = pyqtSignal(int, int, float)
    done = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, shared: SharedRecognizer, video: str | Path, out_dir: str | Path, *,
                 segment_s: float = DEFAULT_SEGMENT_S, parent=None):
        super().__init__(parent)
        self.shared = shared
        self.video = Path(video)
        self.out_dir = Path(out_dir)
        self.segment_s = segment_s
        self._stop = threading.Event()

    def stop(self) -> None:
        """Finish the segment running, commit it and end; returns at once."""
        self._stop.set()

    def run(self) -> None:
        try:
            report = self._analyse()
        except Exception as exc:  # an exception escaping QThread.run aborts PyQt5
            if not isinstance(exc, FervidError):
                traceback.print_exc()
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(report)

    def _analyse(self) -> AnalysisReport:
        require(ANALYSIS, "Analyze Video…")
        from fervid.analysis.in_process_pool import InProcessPool
        from fervid.analysis.results_store import ResultsStore
        from fervid.analysis.runner import VideoJob, analyse_videos
        from fervid.analysis.segments import AnalysisOptions, split
        from fervid.analysis.video_file import probe_video

        info = probe_video(self.video)  # a bad file stops here, before any folder is made
        recognizer = self.shared.get()
        options = AnalysisOptions(segment_s=self.segment_s, model=recognizer.classifier.path,
                                  detector=recognizer.detector.params)
        store = ResultsStore.open(self.out_dir, info, options.settings())
        segments = split(info, options)
        if store.complete:
            summary = json.loads(store.summary_json.read_text(encoding="utf-8"))
            return self._report(store, summary, already=True, segments=len(segments))
        total = sum(segment.frames_to_analyse for segment in segments)
        done = store.frames_analysed
        self.progress.emit(done, total, 0.0)
        began, this_run = time.perf_counter(), 0

        def on_progress(_video: str, n: int) -> None:
            nonlocal done, this_run
            done, this_run = done + n, this_run + n
            self.progress.emit(done, total, this_run / max(time.perf_counter() - began, 1e-6))

        with self.shared.held() as held:
            [outcome] = analyse_videos([VideoJob(info, store, options)],
                                       _StoppablePool(InProcessPool(held), self._stop), on_progress)
        if outcome.error:
            raise FervidError(outcome.error)
        return self._report(store, outcome.summary, already=False, segments=len(segments))

    def _report(self, store: ResultsStore, summary: dict | None, *, already: bool, segments: int) -> AnalysisReport:
        timeline = None
        if summary is not None:
            timeline = cv2.imread(str(store.timeline_png), cv2.IMREAD_COLOR)
            if timeline is None:
                raise AnalysisOutputError(f"{store.timeline_png}: missing or not a readable PNG")
        return AnalysisReport(self.video, self.out_dir, summary, timeline, already, store.segments_done, segments)
