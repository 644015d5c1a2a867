"""Recognition off the GUI thread: one shared recogniser, a live-camera worker, one-shot jobs.

The desktop app runs the same Haar detector and Mini-Xception classifier as ``fervid predict``,
in-process (no cluster). Loading TensorFlow takes seconds and detection takes tens of
milliseconds per frame, so none of it may run on the GUI thread: the window would freeze.

* :class:`SharedRecognizer` loads the model once, lazily, and serialises calls so that the camera
  and an image upload can share it (a cascade classifier is not safe to call from two threads).
* :class:`CameraWorker` reads a source on a capture thread and recognises only the newest frame
  on its own thread, so a slow model drops frames instead of falling further and further behind.
  Like the service's capture actors it holds one ``StreamTracking`` per opened source: each frame
  is scanned where its plan says (the whole frame now and then, else around known faces and
  motion), and its faces leave with track ids and smoothed expressions. A still image has no
  neighbours in time, so an upload stays one full scan without tracks.
* :class:`ImageJob` and :class:`ModelLoader` are one-shot jobs for an upload and for warming up.

Results travel to the GUI as Qt signals (queued across threads) carrying BGR numpy images and
``Faces`` (fervid.models.faces); nothing here touches widgets or talks to Ray.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt5.QtCore import QThread, pyqtSignal

from fervid.models.annotate import draw_faces
from fervid.errors import FervidError
from fervid.media.image_io import load_image
from fervid.models.faces import Faces
from fervid.models.recognizer import Recognizer
from fervid.models.stream_tracking import StreamTracking, tracking_params_for
from fervid.media.frame_source import CapturedFrame, FrameSource, StreamState
from fervid.media.sources import SourceKind, SourceSpec


def describe_error(exc: BaseException) -> str:
    """One line for the window: our own errors already explain themselves, others get a type."""
    if isinstance(exc, FervidError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


class SharedRecognizer:
    """A :class:`Recognizer` loaded on first use and called by one thread at a time.

    ``factory`` defaults to ``Recognizer.load`` (the shipped weights); tests pass a recogniser
    built from an already-loaded classifier so that TensorFlow loads once per session.
    """

    def __init__(self, recognizer: Recognizer | None = None,
                 factory: Callable[[], Recognizer] = Recognizer.load):
        self._recognizer = recognizer
        self._factory = factory
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._recognizer is not None

    def get(self) -> Recognizer:
        """The recogniser, loading it now if nobody has (raises ``ModelLoadError``)."""
        if self._recognizer is None:
            with self._load_lock:
                if self._recognizer is None:
                    self._recognizer = self._factory()
        return self._recognizer

    def recognise(self, image: np.ndarray) -> Faces:
        """Faces in a BGR frame, left to right so that the table's rows read in the same order as
        the picture."""
        recognizer = self.get()
        with self._call_lock:
            faces = recognizer.recognise(image)
        return faces.sorted_left_to_right()

    def recognise_tracked(self, tracking: StreamTracking, ts: float, image: np.ndarray) -> Faces:
        """Faces in the frame at ``ts`` of ``tracking``'s stream, scanned as its plan says, with
        their track ids and smoothed rows, left to right. Frames must come in order."""
        recognizer = self.get()
        with self._call_lock:
            return recognizer.recognise_tracked(tracking, ts, image).sorted_left_to_right()

    @contextmanager
    def held(self) -> Iterator[Recognizer]:
        """The recogniser for a long job that calls its detector and classifier itself (a video
        analysis): nobody else calls it until the block ends."""
        recognizer = self.get()
        with self._call_lock:
            yield recognizer

    def annotate(self, image: np.ndarray) -> tuple[np.ndarray, Faces]:
        """The frame with boxes and labels drawn on it, and its faces."""
        faces = self.recognise(image)
        return draw_faces(image, faces), faces


class ModelLoader(QThread):
    """Loads the model in the background at start-up so the first upload or frame is quick."""

    loaded = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, shared: SharedRecognizer, parent=None):
        super().__init__(parent)
        self.shared = shared

    def run(self) -> None:
        try:
            self.shared.get()
        except Exception as exc:  # an exception escaping QThread.run aborts PyQt5
            if not isinstance(exc, FervidError):
                traceback.print_exc()
            self.failed.emit(f"cannot load the model: {describe_error(exc)}")
            return
        self.loaded.emit()


class ImageJob(QThread):
    """Load one still image safely, recognise it and annotate it.

    ``done(path, annotated BGR, faces)`` on success; ``failed(message)`` for a file that is not an
    image, too large to decode, unreadable, or a model that cannot load.
    """

    done = pyqtSignal(str, object, object)
    failed = pyqtSignal(str)

    def __init__(self, shared: SharedRecognizer, path: str | Path, parent=None):
        super().__init__(parent)
        self.shared = shared
        self.path = Path(path)

    def run(self) -> None:
        try:
            image = load_image(self.path)
            annotated, faces = self.shared.annotate(image)
        except Exception as exc:
            if not isinstance(exc, FervidError):
                traceback.print_exc()
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(str(self.path), annotated, faces)


class LatestFrame:
    """A one-frame mailbox: a new frame replaces an unread one (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: CapturedFrame | None = None
        self.delivered = 0
        self.dropped = 0

    def put(self, frame: CapturedFrame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.delivered += 1
            self._cond.notify()

    def take(self, timeout: float) -> CapturedFrame | None:
        """The newest unread frame, or ``None`` after ``timeout`` seconds without one."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame


_OPEN_HINTS = {
    SourceKind.DEVICE: "no such camera, or another program is using it",
    SourceKind.FILE: "not a video OpenCV can read",
    SourceKind.RTSP: "the camera is unreachable or not an RTSP video stream",
    SourceKind.HTTP: "the server is unreachable or not a video stream",
}


def open_failure_message(spec: SourceSpec, reason: str) -> str:
    """A sentence for a source that never opened, with the likely cause for its kind."""
    if reason.startswith("cannot open"):
        return f"Cannot open {spec.display}: {_OPEN_HINTS[spec.kind]}."
    return f"Cannot use {spec.display}: {reason} ({_OPEN_HINTS[spec.kind]})."


@dataclass(frozen=True)
class CameraStats:
    """What the status line shows while a camera runs."""

    frames: int
    dropped: int
    fps: float
    faces: int


class CameraWorker(QThread):
    """Live recognition of one source (device index, video file or URL).

    A capture thread reads with ``FrameSource(pace=True)`` (files play at their own frame rate,
    like a camera) into a :class:`LatestFrame`; this thread recognises whatever frame is newest,
    through ``tracking`` (made for this source when the worker starts, on the stream's own clock,
    ``CapturedFrame.ts``: a file's media time, a live source's wall clock).
    A source that cannot be opened at all is reported once through ``failed`` and the worker
    ends, instead of retrying in silence; one that drops out after working is reconnected by
    ``FrameSource`` and reported through ``status``. ``stop()`` ends it promptly.
    """

    frame_ready = pyqtSignal(object, object)
    """(annotated BGR image, tracked ``Faces``)"""
    failed = pyqtSignal(str)
    status = pyqtSignal(str)
    stats = pyqtSignal(object)
    """:class:`CameraStats`, at most a few times a second."""

    STATS_INTERVAL_S = 0.5

    def __init__(self, shared: SharedRecognizer, spec: SourceSpec, *,
                 source_factory: Callable[[SourceSpec], FrameSource] | None = None, parent=None):
        super().__init__(parent)
        self.shared = shared
        self.spec = spec
        self._source_factory = source_factory or self._default_source
        self._stop = threading.Event()
        self.frames_processed = 0
        self.tracking: StreamTracking | None = None
        """This source's tracks, plans and smoothing, once the model has loaded."""

    @staticmethod
    def _default_source(spec: SourceSpec) -> FrameSource:
        return FrameSource(spec, pace=True, loop=False, reconnect_initial_s=0.5, reconnect_max_s=5.0,
                           open_timeout_s=5.0, read_timeout_s=5.0)

    def stop(self) -> None:
        """Ask the worker to end; returns at once (``finished`` is emitted when it has)."""
        self._stop.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # never let an exception escape into Qt
            if not isinstance(exc, FervidError):
                traceback.print_exc()
            self.failed.emit(describe_error(exc))
        finally:
            self._stop.set()

    def _capture(self, source: FrameSource, mailbox: LatestFrame) -> None:
        try:
            for frame in source.frames(self._stop):
                mailbox.put(frame)
        except Exception:  # FrameSource should not raise; if it does, the worker notices it ended
            traceback.print_exc()

    def _run(self) -> None:
        if not self.shared.loaded:
            self.status.emit("Loading the model…")
        self.tracking = StreamTracking(tracking_params_for(self.shared.get().detector.params))
        if self._stop.is_set():
            return
        source = self._source_factory(self.spec)
        mailbox = LatestFrame()
        capture = threading.Thread(target=self._capture, args=(source, mailbox),
                                   name=f"capture {self.spec.display}", daemon=True)
        capture.start()
        self.status.emit(f"Opening {self.spec.display}…")
        reported_down = False
        window_start, window_frames, last_stats = time.monotonic(), 0, 0.0
        try:
            while not self._stop.is_set():
                frame = mailbox.take(timeout=0.1)
                if frame is None:
                    state = source.state  # read before ``delivered``: see the note below
                    if state is StreamState.DOWN and not reported_down:
                        # A frame is always counted before the source can go down again, so
                        # ``delivered == 0`` here means it never opened at all.
                        reason = source.last_error or f"cannot open {self.spec.display}"
                        if mailbox.delivered == 0:
                            self.failed.emit(open_failure_message(self.spec, reason))
                            return
                        self.status.emit(f"{reason}; reconnecting…")
                        reported_down = True
                    if not capture.is_alive():
                        if source.state is StreamState.FINISHED:
                            self.status.emit(f"{self.spec.display}: end of video")
                        return
                    continue
                reported_down = False
                faces = self.shared.recognise_tracked(self.tracking, frame.ts, frame.image)
                annotated = draw_faces(frame.image, faces)
                if self._stop.is_set():
                    return
                self.frames_processed += 1
                window_frames += 1
                self.frame_ready.emit(annotated, faces)
                now = time.monotonic()
                if now - last_stats >= self.STATS_INTERVAL_S:
                    fps = window_frames / max(now - window_start, 1e-6)
                    self.stats.emit(CameraStats(self.frames_processed, mailbox.dropped, fps, len(faces)))
                    window_start, window_frames, last_stats = now, 0, now
        finally:
            self._stop.set()
            capture.join(timeout=max(source.read_timeout_s, source.open_timeout_s) + 1.0)
