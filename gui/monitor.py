"""The per-stream live monitor: `fervid monitor NAME`.

Subscribes to one stream (``fervid.comms.receiver``), and on a short timer shows only the newest
message: the decoded frame with boxes and labels (``models.annotate.draw_faces``), per-face
probability bars, the stream's fps, capture-to-screen latency and the link state. Faces of a
tracking service carry their track ids (``#7 sad 50%`` on the box and above its bars) and are
labelled and barred with their tracks' smoothed probabilities, which do not flicker frame to frame.
The timer drains the socket on every tick, so a slow screen never builds a backlog. The link-state
rules live in ``MonitorState``, which takes its clocks as parameters so they are tested without waiting.
No Ray here: the monitor talks to the service only through ZMQ.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import cv2
import numpy as np
import zmq
from PyQt5.QtCore import QEventLoop, QRect, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QPainter, QPixmap
from PyQt5.QtWidgets import QApplication, QFormLayout, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from fervid.comms.endpoints import DEFAULT_ENDPOINT, EndpointError, check_tcp_endpoint
from fervid.errors import FervidError
from fervid.models.annotate import draw_faces
from fervid.gui.probability_bars import ProbabilityBars
from fervid.gui.qt_env import headless_problem, quiet_qt_messages
from fervid.gui.qt_image import bgr_to_pixmap
from fervid.comms.receiver import StreamReceiver
from fervid.comms.messages import StreamMessage


TICK_MS = 20
"""Drain-and-paint period: faster than any camera, so a new frame waits at most one tick."""

MAX_FRAME_PIXELS = 8192 * 8192
"""A JPEG declaring more pixels than this is refused before decoding: the declared size, not the
byte count, decides how much memory the decoder allocates."""

_LINK_COLOURS = {"connected": "#2e7d32", "waiting": "#ef6c00", "source down": "#c62828", "refused": "#c62828"}


class LinkState(str, Enum):
    WAITING = "waiting"
    CONNECTED = "connected"
    SOURCE_DOWN = "source down"
    REFUSED = "refused"
    """The publisher refused the connection (a CURVE key it does not admit, or CURVE on one side
    only): ZMQ does not retry a refused key, so waiting would be forever."""


class MonitorState:
    """Link state and the figures shown next to the video, kept free of Qt and sockets.

    The service publishes only processed frames (there is no heartbeat), so silence is the only
    sign of trouble: before any image frame has arrived, silence means we are still *waiting*
    (service not up, or the stream not attached yet); once frames have been shown, more than
    ``down_after_s`` of silence means the *source is down* (camera, stream or service gone).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 waiting_after_s: float = 2.0, down_after_s: float = 3.0) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.waiting_after_s = waiting_after_s
        self.down_after_s = down_after_s
        self._last_message_at: float | None = None
        self.had_frames = False
        self.messages = 0
        self.last: StreamMessage | None = None
        self.latency_ms: float | None = None

    def record(self, message: StreamMessage, *, image: bool) -> None:
        """Note a message as it is painted; ``image`` says whether it brought a displayable frame.

        Latency is taken here, at paint time, so it covers capture, the whole service, the
        network and the monitor's own queueing (wall clocks: the capture host's and ours).
        """
        self._last_message_at = self._clock()
        self.messages += 1
        self.had_frames = self.had_frames or image
        self.last = message
        self.latency_ms = (self._wall_clock() - message.ts_capture) * 1000.0

    def silence_s(self) -> float | None:
        """Seconds since the last message, ``None`` before the first."""
        return None if self._last_message_at is None else self._clock() - self._last_message_at

    def link_state(self) -> LinkState:
        silence = self.silence_s()
        if silence is None:
            return LinkState.WAITING
        if self.had_frames:
            return LinkState.SOURCE_DOWN if silence > self.down_after_s else LinkState.CONNECTED
        return LinkState.WAITING if silence > self.waiting_after_s else LinkState.CONNECTED


def jpeg_dimensions(jpeg: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame marker, without decoding; ``None`` if absent."""
    i = 2
    while i + 9 <= len(jpeg):
        if jpeg[i] != 0xFF:
            return None
        marker = jpeg[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(jpeg[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(jpeg[i + 5:i + 7], "big")
            width = int.from_bytes(jpeg[i + 7:i + 9], "big")
            return width, height
        if marker == 0xDA or length < 2:  # image data before any frame header: not a valid JPEG
            return None
        i += 2 + length
    return None


def decode_frame(jpeg: bytes) -> np.ndarray | None:
    """A BGR image from JPEG bytes, or ``None`` when they are corrupt or declare an absurd size."""
    size = jpeg_dimensions(jpeg)
    if size is None or size[0] * size[1] > MAX_FRAME_PIXELS:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


class VideoView(QWidget):
    """The annotated frame, scaled to fit with its aspect ratio kept; text until the first one."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._placeholder = placeholder
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WA_OpaquePaintEvent)

    def pixmap(self) -> QPixmap | None:
        """The full-resolution annotated frame last shown (what the tests read pixels from)."""
        return self._pixmap

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self.update()

    def set_placeholder(self, text: str) -> None:
        """The text shown while there is no frame (e.g. why the publisher refused us)."""
        if text != self._placeholder:
            self._placeholder = text
            self.update()

    def placeholder(self) -> str:
        return self._placeholder

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), Qt.black)
            if self._pixmap is None or self._pixmap.isNull():
                painter.setPen(Qt.lightGray)
                painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self._placeholder)
                return
            size = self._pixmap.size().scaled(self.size(), Qt.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(self.rect().center())
            painter.setRenderHint(QPainter.SmoothPixmapTransform)
            painter.drawPixmap(target, self._pixmap)
        finally:
            painter.end()


class MonitorWindow(QWidget):
    """One stream's monitor; it owns its socket, and closing the window closes that socket."""

    frame_shown = pyqtSignal(int)
    """Emitted with the seq of each message painted with a new image."""
    closed = pyqtSignal()

    def __init__(self, stream: str, endpoint: str = DEFAULT_ENDPOINT, *, receiver: StreamReceiver | None = None,
                 state: MonitorState | None = None, interval_ms: int = TICK_MS,
                 parent: QWidget | None = None, server_key: Path | None = None,
                 client_key: Path | None = None) -> None:
        super().__init__(parent)
        self.stream = stream
        self.endpoint = endpoint
        self.receiver = receiver if receiver is not None else StreamReceiver(
            stream, endpoint, server_key=server_key, client_key=client_key)
        self.state = state if state is not None else MonitorState()
        self.frames_shown = 0
        self.bad_frames = 0
        """Messages that decoded but could not be shown (corrupt JPEG, impossible boxes)."""
        self._image: np.ndarray | None = None
        self.setWindowTitle(f"fervid monitor: {stream} @ {endpoint}")
        self._build(stream, endpoint)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)
        self._timer.start()
        self._refresh_link()

    def _build(self, stream: str, endpoint: str) -> None:
        self._waiting_text = f"waiting for stream {stream} on {endpoint}"
        self.video = VideoView(self._waiting_text)
        self.link_label = QLabel()
        self.seq_label = QLabel("-")
        self.fps_label = QLabel("-")
        self.latency_label = QLabel("-")
        self.faces_label = QLabel("-")
        self.skipped_label = QLabel("0")
        self.bars = ProbabilityBars()
        form = QFormLayout()
        form.addRow("stream", QLabel(stream))
        form.addRow("link", self.link_label)
        form.addRow("frame", self.seq_label)
        form.addRow("fps", self.fps_label)
        form.addRow("latency", self.latency_label)
        form.addRow("faces", self.faces_label)
        form.addRow("skipped", self.skipped_label)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.bars)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(scroll, 1)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(300)
        layout = QHBoxLayout(self)
        layout.addWidget(self.video, 1)
        layout.addWidget(panel)
        self.resize(1000, 480)

    @property
    def link_state(self) -> LinkState:
        """The stream's state as the window shows it; a refused handshake overrides silence."""
        state = self.state.link_state()
        if self.receiver.rejected and state is not LinkState.CONNECTED:
            return LinkState.REFUSED
        return state

    def tick(self) -> bool:
        """Drain the socket, paint the newest message if any; True when something was painted."""
        message = self.receiver.poll()
        painted = message is not None and self._show(message)
        self._refresh_skipped()
        self._refresh_link()
        return painted

    def _show(self, message: StreamMessage) -> bool:
        image = decode_frame(message.jpeg) if message.jpeg else None
        if message.jpeg and image is None:
            self.bad_frames += 1  # keep the previous image, still show the new results
        base = image if image is not None else self._image
        if base is None:  # header-only messages before any image: boxes on a blank frame
            base = np.zeros((min(message.height, 2160), min(message.width, 3840), 3), np.uint8)
        try:
            annotated = draw_faces(base, message.faces)
        except (cv2.error, OverflowError):  # boxes outside any image's coordinate range
            self.bad_frames += 1
            return False
        if image is not None:
            self._image = image
        self.video.set_pixmap(bgr_to_pixmap(annotated))
        self.state.record(message, image=image is not None)
        self.bars.set_faces(message.faces)
        self.seq_label.setText(str(message.seq))
        self.fps_label.setText(f"{message.fps:.1f}")
        self.latency_label.setText(f"{self.state.latency_ms:.0f} ms")
        self.faces_label.setText(str(len(message.faces)))
        if image is not None:
            self.frames_shown += 1
            self.frame_shown.emit(message.seq)
        return True

    def _refresh_skipped(self) -> None:
        skipped = str(self.receiver.malformed + self.bad_frames)
        if self.skipped_label.text() != skipped:
            self.skipped_label.setText(skipped)

    def _refresh_link(self) -> None:
        state = self.link_state
        reason = self.receiver.rejected if state is LinkState.REFUSED else None
        if self.link_label.text() != state.value:
            self.link_label.setText(state.value)
            self.link_label.setStyleSheet(f"color: {_LINK_COLOURS[state.value]}; font-weight: bold")
        if self.link_label.toolTip() != (reason or ""):  # every tick (20 ms): change only on news
            self.link_label.setToolTip(reason or "")
        self.video.set_placeholder(f"refused: {reason}" if reason else self._waiting_text)

    def shutdown(self) -> None:
        """Stop reading and close this monitor's socket (idempotent)."""
        self._timer.stop()
        self.receiver.close()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.shutdown()
        self.closed.emit()
        super().closeEvent(event)


class MonitorError(FervidError):
    """The monitor cannot run, or its frames did not come; ``fervid monitor`` prints it as one line."""


def run_monitor(stream: str, endpoint: str = DEFAULT_ENDPOINT, screenshot: Path | None = None,
                frames: int | None = None, *, timeout_s: float = 60.0, server_key: Path | None = None,
                client_key: Path | None = None) -> None:
    """Show the monitor for ``stream`` (what ``fervid monitor`` runs).

    Interactive (no ``frames``): runs until the window is closed or Ctrl+C.
    With ``frames`` (``screenshot`` implies 1): returns once that many frames have been painted,
    after saving the window to ``screenshot`` if given. Raises MonitorError (one line) when they
    do not arrive within ``timeout_s``, or the endpoint, a key file or the screenshot path is
    unusable; the endpoint is checked before any window or socket exists. ``server_key`` (the
    publisher's ``.key``) and ``client_key`` (this monitor's ``.key_secret``) subscribe over ZMQ CURVE.
    """
    try:
        check_tcp_endpoint(endpoint)
    except EndpointError as exc:
        raise MonitorError(str(exc)) from None
    if frames is not None and frames < 1:
        raise MonitorError("--frames must be at least 1")
    if screenshot is not None and frames is None:
        frames = 1
    problem = headless_problem(frames is not None, "use --screenshot PNG --frames N")
    if problem:
        raise MonitorError(problem)
    with quiet_qt_messages():
        _run(stream, endpoint, screenshot, frames, timeout_s, server_key, client_key)


def _run(stream: str, endpoint: str, screenshot: Path | None, frames: int | None, timeout_s: float,
         server_key: Path | None = None, client_key: Path | None = None) -> None:
    from fervid.comms.curve import CurveKeyError

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "fervid"])
    try:
        window = MonitorWindow(stream, endpoint, server_key=server_key, client_key=client_key)
    except CurveKeyError as exc:
        raise MonitorError(f"cannot subscribe to {stream!r} on {endpoint}: {exc}") from None
    except (zmq.ZMQError, ValueError) as exc:
        raise MonitorError(f"cannot subscribe to {stream!r} on {endpoint}: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None
    loop = QEventLoop()
    outcome: dict[str, str | None] = {"error": None}

    def finish(error: str | None = None) -> None:
        outcome["error"] = error
        loop.quit()

    def on_frame(_seq: int) -> None:
        if frames is None or window.frames_shown < frames or not loop.isRunning():
            return
        if screenshot is not None and not window.grab().save(str(screenshot), "PNG"):
            finish(f"cannot write screenshot {screenshot}")
            return
        finish()

    def on_timeout() -> None:
        shown = window.frames_shown
        if shown == 0:
            why = f" ({window.receiver.rejected})" if window.receiver.rejected else ""
            finish(f"no frames from stream {stream} on {endpoint}{why}")
        else:
            finish(f"only {shown} of {frames} frames from stream {stream} on {endpoint} in {timeout_s:g} s")

    window.frame_shown.connect(on_frame)
    window.closed.connect(loop.quit)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(on_timeout)
    if frames is not None:
        deadline.start(int(timeout_s * 1000))
    previous_sigint = None
    if threading.current_thread() is threading.main_thread():
        # The tick timer runs Python every few ms, so this handler gets its turn promptly.
        previous_sigint = signal.signal(signal.SIGINT, lambda *_: loop.quit())
    try:
        window.show()
        loop.exec_()
    finally:
        deadline.stop()
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)
        window.frame_shown.disconnect(on_frame)
        window.closed.disconnect(loop.quit)
        window.close()
        window.deleteLater()
        app.processEvents()
    if outcome["error"]:
        raise MonitorError(outcome["error"])
