"""Reading frames from one source, with a watchdog that reopens it when it stops delivering.

This is the part of a capture actor that talks to OpenCV; it has no Ray in it so that pacing,
looping, end-of-file and reconnection can be tested directly on real files and servers.
"""
from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from fervid.media.sources import SourceKind, SourceSpec

DEFAULT_FILE_FPS = 25.0
"""Pace for files that store no frame rate."""


class StreamState(str, enum.Enum):
    STARTING = "starting"
    UP = "up"
    DOWN = "down"
    FINISHED = "finished"
    STOPPED = "stopped"


@dataclass(frozen=True)
class CapturedFrame:
    seq: int
    ts_capture: float
    """Wall-clock time (``time.time()``) the frame was read: latency is measured from here."""
    image: np.ndarray
    ts_stream: float | None = None
    """The stream's own clock, what tracking and smoothing run on (``None``: ``ts_capture``). For
    a file, media time: the frames this source read before this one over the file's frame rate
    (0.0 for the first, on across loops and reopens). A file read faster than it plays (unpaced)
    or slower (an ``fps`` override) still moves its faces at their recorded speed, so a track's
    ``max_age_s`` and the smoothing's half-life mean the same at any reading speed. Live sources
    run on the wall clock."""

    @property
    def ts(self) -> float:
        """``ts_stream``, or ``ts_capture`` where the stream has no clock of its own."""
        return self.ts_capture if self.ts_stream is None else self.ts_stream


class Backoff:
    """Exponential back-off between reopen attempts, capped, reset by the first good frame."""

    def __init__(self, initial_s: float, max_s: float):
        self.initial_s = initial_s
        self.max_s = max_s
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2.0, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


def open_video_capture(spec: SourceSpec, open_timeout_s: float, read_timeout_s: float) -> cv2.VideoCapture:
    """Open a source with OpenCV; network sources get open/read timeouts so a dead camera
    makes ``read`` fail instead of blocking forever."""
    if spec.kind is SourceKind.DEVICE:
        return cv2.VideoCapture(int(spec.location))
    if spec.kind is SourceKind.FILE:
        return cv2.VideoCapture(str(spec.location), cv2.CAP_FFMPEG)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
    return cv2.VideoCapture(str(spec.location), cv2.CAP_FFMPEG, params)


def _file_problem(spec: SourceSpec) -> str:
    """Why a file source would not open, as a suffix for ``last_error`` ("" for other kinds).

    OpenCV only says "not opened"; the status line should tell a vanished or empty file from a
    damaged one (an MP4 cut before its index, the ``moov`` atom, cannot be played at all).
    """
    if spec.kind is not SourceKind.FILE:
        return ""
    try:
        size = os.stat(spec.location).st_size
    except OSError:
        return " (file not found)"
    if size == 0:
        return " (empty file)"
    return " (not a video OpenCV can read: damaged, truncated or unsupported)"


class FrameSource:
    """Yields numbered, timestamped frames; never raises for a source that fails.

    A source that cannot be opened, or stops delivering, is marked ``DOWN`` and reopened after
    an exponentially growing, capped delay; it is ``UP`` again from its first good frame.
    Files end (``FINISHED``) unless ``loop`` is set; a looping file that vanished counts as down.
    With ``pace`` a file is delivered at its own frame rate, like a camera.
    """

    def __init__(self, spec: SourceSpec, *, loop: bool = False, pace: bool = True,
                 fps: float | None = None, reconnect_initial_s: float = 0.5,
                 reconnect_max_s: float = 10.0, open_timeout_s: float = 5.0,
                 read_timeout_s: float = 5.0, first_seq: int = 0):
        self.spec = spec
        self.loop = loop
        self.pace = pace and spec.kind is SourceKind.FILE
        self.fps_override = fps
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff = Backoff(reconnect_initial_s, reconnect_max_s)
        self.state = StreamState.STARTING
        self.reconnects = 0
        """How many times the source was opened again after being down."""
        self.open_attempts = 0
        """How many times opening the source was tried, successfully or not: a source that never
        opens shows ``reconnects`` 0 for ever, but its attempts keep counting."""
        self.last_error: str | None = None
        self.source_fps: float | None = None
        self.frame_size: tuple[int, int] | None = None
        self._cap: cv2.VideoCapture | None = None
        self._seq = first_seq
        self._lock = threading.Lock()
        self._media_s = 0.0
        """Media time of a file's next frame (``CapturedFrame.ts_stream``)."""

    # -- opening and closing ------------------------------------------------------------------
    def _open(self) -> bool:
        self.open_attempts += 1
        cap = open_video_capture(self.spec, self.open_timeout_s, self.read_timeout_s)
        if not cap.isOpened():
            cap.release()
            self.last_error = f"cannot open {self.spec.display}{_file_problem(self.spec)}"
            return False
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.source_fps = float(fps) if fps and 0 < fps < 1000 else None
        with self._lock:
            self._cap = cap
        return True

    def _release(self) -> None:
        with self._lock:
            cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def close(self) -> None:
        self._release()
        if self.state is not StreamState.FINISHED:
            self.state = StreamState.STOPPED

    @property
    def pace_fps(self) -> float:
        return self.fps_override or self.source_fps or DEFAULT_FILE_FPS

    def _go_down(self, reason: str, stop: threading.Event) -> None:
        """Mark the stream down and wait the next back-off delay (returns early on stop)."""
        self._release()
        self.state = StreamState.DOWN
        self.last_error = reason
        stop.wait(self.backoff.next_delay())

    def _stamps(self) -> tuple[float, float | None]:
        """``ts_capture`` and ``ts_stream`` of the frame just read (``CapturedFrame.ts_stream``)."""
        now = time.time()
        if self.spec.kind is not SourceKind.FILE:
            return now, None
        ts_stream = self._media_s
        self._media_s += 1.0 / (self.source_fps or DEFAULT_FILE_FPS)
        return now, ts_stream

    # -- the frame loop ---------------------------------------------------------------------
    def frames(self, stop: threading.Event) -> Iterator[CapturedFrame]:
        """Frames until ``stop`` is set or a non-looping file ends."""
        pace_start: float | None = None
        paced = 0
        frames_since_open = 0
        try:
            while not stop.is_set():
                if self._cap is None:
                    if not self._open():
                        self._go_down(self.last_error or "cannot open", stop)
                        continue
                    frames_since_open = 0
                    if self.state is StreamState.DOWN:
                        self.reconnects += 1  # counted when a lost source is opened again
                ok, image = self._cap.read()
                if not ok or image is None:
                    if self.spec.kind is SourceKind.FILE and frames_since_open > 0:
                        self._release()  # end of file
                        if self.loop:
                            continue
                        self.state = StreamState.FINISHED
                        return
                    what = "no frames in" if self.spec.kind is SourceKind.FILE else "lost"
                    self._go_down(f"{what} {self.spec.display}", stop)
                    continue
                frames_since_open += 1
                if self.state is not StreamState.UP:
                    self.state = StreamState.UP
                    self.last_error = None
                self.backoff.reset()
                self.frame_size = (image.shape[1], image.shape[0])
                if self.pace:
                    now = time.monotonic()
                    if pace_start is None or now - (pace_start + paced / self.pace_fps) > 1.0:
                        pace_start, paced = now, 0  # first frame, or far behind: do not burst
                    due = pace_start + paced / self.pace_fps
                    if due > now and stop.wait(due - now):
                        return
                    paced += 1
                self._seq += 1
                ts_capture, ts_stream = self._stamps()
                yield CapturedFrame(self._seq, ts_capture, image, ts_stream)
        finally:
            self.close()
