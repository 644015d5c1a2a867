"""The live monitor: real ZMQ messages from a real XPUB socket, real JPEG frames, offscreen Qt.

Pixels are read back from what the window displays, so these tests see what a user would see.
Waits use qtbot.waitUntil with generous timeouts: they return as soon as the condition holds.
"""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import zmq
from PyQt5.QtGui import QImage

from fervid.models.annotate import EMOTION_COLOURS_BGR, draw_faces
from fervid.gui.monitor import (LinkState, MonitorError, MonitorState, MonitorWindow, decode_frame, jpeg_dimensions,
                                run_monitor)
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from fervid.comms.messages import StreamMessage, encode_message
from tests.conftest import REPO
from tests.helpers.zmq_helpers import face, frame_bgr, frame_jpeg, make_message
from tests.services.service_helpers import free_port

WAIT_MS = 15_000

HAPPY = face((40, 50, 120, 130), "happy", 0.9)
ANGRY = face((300, 60, 110, 120), "angry", 0.6)
HAPPY_TRACK_7_SMOOTHED_SAD = {**HAPPY, "track": 7, "smoothed": face((0, 0, 0, 0), "sad", 0.5)["probabilities"]}
ANGRY_TRACK_12 = {**ANGRY, "track": 12, "smoothed": ANGRY["probabilities"]}
"""A tracked, smoothed stream's faces: the first's track average (sad) disagrees with this frame (happy)."""


@pytest.fixture
def open_monitor(qtbot, service):
    """Open a monitor on ``service`` and wait until its subscription has reached the publisher."""

    def make(stream: str = "cam1", wait: bool = True, **kwargs) -> MonitorWindow:
        window = MonitorWindow(stream, service.endpoint, **kwargs)
        qtbot.addWidget(window)
        window.show()
        if wait:
            qtbot.waitUntil(lambda: service.has_subscribers(**{stream: 1}), timeout=WAIT_MS)
        return window

    return make


def rgb_array(image: QImage) -> np.ndarray:
    """A QImage (or pixmap's image) as an RGB numpy array, copied."""
    image = image.convertToFormat(QImage.Format_RGB888)
    width, height = image.width(), image.height()
    bits = image.constBits()
    bits.setsize(image.byteCount())
    rows = np.frombuffer(bits, np.uint8).reshape(height, image.bytesPerLine())
    return rows[:, :width * 3].reshape(height, width, 3).copy()


def rgb(emotion: str) -> tuple[int, int, int]:
    b, g, r = EMOTION_COLOURS_BGR[emotion]
    return r, g, b


def displayed(window: MonitorWindow) -> np.ndarray:
    return rgb_array(window.video.pixmap().toImage())


def wait_for_seq(qtbot, window: MonitorWindow, seq: int) -> None:
    qtbot.waitUntil(lambda: window.state.last is not None and window.state.last.seq == seq, timeout=WAIT_MS)


def expected_display(jpeg: bytes, message: StreamMessage) -> np.ndarray:
    """What the window must show: the decoded frame with the message's faces drawn, as RGB."""
    annotated = draw_faces(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                           message.faces)
    return annotated[:, :, ::-1]


# -- what the monitor shows ---------------------------------------------------------------------

def test_shows_the_frame_with_the_boxes_labels_bars_and_figures_it_received(qtbot, service, open_monitor):
    window = open_monitor()
    assert window.link_state is LinkState.WAITING and window.video.pixmap() is None
    message = make_message(seq=5, faces=[HAPPY, ANGRY], fps=12.5, age_s=0.2)
    service.send(message)
    wait_for_seq(qtbot, window, 5)

    pixels = displayed(window)
    assert pixels.shape == frame_bgr().shape
    # Independently of draw_faces: the middle of each box's left edge has its emotion's colour.
    for record in (HAPPY, ANGRY):
        x, y, w, h = record["box"]
        assert np.abs(pixels[y + h // 2, x].astype(int) - rgb(record["emotion"])).max() <= 2, record["emotion"]
        assert np.abs(pixels[y + h // 2, x + w].astype(int) - rgb(record["emotion"])).max() <= 2, record["emotion"]
    # And exactly what draw_faces makes of the decoded JPEG (boxes plus "happy 90%" labels).
    np.testing.assert_array_equal(pixels, expected_display(frame_jpeg(), message))

    assert window.seq_label.text() == "5"
    assert window.fps_label.text() == "12.5"
    assert window.faces_label.text() == "2"
    assert window.link_label.text() == "connected" and window.link_state is LinkState.CONNECTED
    latency_ms = float(window.latency_label.text().removesuffix(" ms"))
    assert 200 <= latency_ms < 60_000
    assert window.frames_shown == 1 and window.skipped_label.text() == "0"

    shown = window.bars.values()
    assert [[name for name, _ in face] for face in shown] == [list(EMOTIONS)] * 2
    assert [[p for _, p in face] for face in shown] == [
        pytest.approx([record["probabilities"][name] for name in EMOTIONS], abs=1e-6) for record in (HAPPY, ANGRY)]
    assert window.bars.titles() == ["face 1: happy 90%", "face 2: angry 60%"]
    bars = rgb_array(window.bars.grab().toImage())
    for emotion in ("happy", "angry"):
        assert (np.abs(bars.astype(int) - rgb(emotion)).max(axis=2) <= 2).sum() > 50, emotion


def test_tracked_faces_show_their_track_ids_and_smoothed_labels_and_bars(qtbot, service, open_monitor):
    """A tracking service's message: boxes labelled ``#7 sad 50%`` (the smoothed label, not this
    frame's happy), bars of the smoothed rows titled with the track ids."""
    window = open_monitor()
    message = make_message(seq=9, faces=[HAPPY_TRACK_7_SMOOTHED_SAD, ANGRY_TRACK_12])
    service.send(message)
    wait_for_seq(qtbot, window, 9)

    received = window.state.last.faces
    assert received.track_ids.tolist() == [7, 12] and received.emotions == ["sad", "angry"]
    pixels = displayed(window)
    x, y, w, h = HAPPY["box"]
    assert np.abs(pixels[y + h // 2, x].astype(int) - rgb("sad")).max() <= 2  # the smoothed label's colour
    np.testing.assert_array_equal(pixels, expected_display(frame_jpeg(), message))
    untracked = make_message(faces=[HAPPY, ANGRY])
    assert not np.array_equal(pixels, expected_display(frame_jpeg(), untracked))

    assert window.bars.titles() == ["#7 sad 50% (smoothed)", "#12 angry 60% (smoothed)"]
    shown = window.bars.values()
    assert [[p for _, p in face] for face in shown] == [
        pytest.approx([record["smoothed"][name] for name in EMOTIONS], abs=1e-6)
        for record in (HAPPY_TRACK_7_SMOOTHED_SAD, ANGRY_TRACK_12)]
    bars = rgb_array(window.bars.grab().toImage())
    assert (np.abs(bars.astype(int) - rgb("sad")).max(axis=2) <= 2).sum() > 50
    assert window.faces_label.text() == "2"

    service.send(make_message(seq=10, faces=[HAPPY]))  # tracking turned off: plain labels again
    wait_for_seq(qtbot, window, 10)
    assert window.bars.titles() == ["face 1: happy 90%"]


def test_drains_a_backlog_and_shows_the_newest_frame(qtbot, service, open_monitor):
    window = open_monitor(interval_ms=3_600_000)  # the test ticks by hand
    shown: list[int] = []
    window.frame_shown.connect(shown.append)
    for seq in range(1, 31):
        service.send(make_message(seq=seq, faces=[HAPPY]))
    qtbot.wait(1000)  # let the burst arrive (30 frames over loopback take milliseconds)

    def ticked_to_newest() -> bool:
        window.tick()
        return shown[-1:] == [30]

    qtbot.waitUntil(ticked_to_newest, timeout=WAIT_MS)
    assert shown == sorted(set(shown)) and len(shown) <= 3, shown
    assert window.seq_label.text() == "30"


def test_header_only_message_updates_faces_and_fps_but_keeps_the_image(qtbot, service, open_monitor):
    window = open_monitor()
    service.send(make_message(seq=1, faces=[HAPPY], fps=25.0))
    wait_for_seq(qtbot, window, 1)
    unwatched = make_message(seq=2, faces=[ANGRY], fps=20.0, jpeg=b"")
    service.send(unwatched)
    wait_for_seq(qtbot, window, 2)
    np.testing.assert_array_equal(displayed(window), expected_display(frame_jpeg(), unwatched))
    assert window.fps_label.text() == "20.0" and window.faces_label.text() == "1"
    assert [name for name, _ in window.bars.values()[0]] == list(EMOTIONS)
    assert window.bars.values()[0][0] == ("angry", pytest.approx(0.6))
    assert window.frames_shown == 1  # no new image was painted


def test_header_only_messages_before_any_image_draw_on_a_blank_frame(qtbot, service, open_monitor):
    window = open_monitor()
    service.send(make_message(seq=1, faces=[HAPPY], jpeg=b""))
    wait_for_seq(qtbot, window, 1)
    pixels = displayed(window)
    assert pixels.shape == frame_bgr().shape
    x, y, w, h = HAPPY["box"]
    assert tuple(pixels[y + h // 2, x]) == rgb("happy") and tuple(pixels[y + h // 2, x + w // 2]) == (0, 0, 0)
    assert window.frames_shown == 0


def test_malformed_messages_corrupt_images_and_impossible_boxes_are_skipped(qtbot, service, open_monitor):
    window = open_monitor()
    service.send(make_message(seq=1, faces=[HAPPY]))
    wait_for_seq(qtbot, window, 1)
    service.send_frames([b"cam1", b"{not json", b""])
    qtbot.waitUntil(lambda: window.skipped_label.text() == "1", timeout=WAIT_MS)
    assert window.seq_label.text() == "1" and window.link_state is LinkState.CONNECTED
    corrupt = make_message(seq=2, faces=[ANGRY], jpeg=b"\xff\xd8\xff\xe0 truncated garbage")
    service.send(corrupt)
    wait_for_seq(qtbot, window, 2)
    # The corrupt JPEG is counted; its faces are drawn on the previous image.
    np.testing.assert_array_equal(displayed(window), expected_display(frame_jpeg(), corrupt))
    assert window.bad_frames == 1 and window.skipped_label.text() == "2"

    # A box no frame can hold is refused when the message is decoded, and counted as skipped.
    frames = encode_message(make_message(seq=3, faces=[face((5, 0, 5, 5), "sad", 0.5)]))
    frames[1] = frames[1].replace(b'"box":[5,', b'"box":[%d,' % 2 ** 40)
    service.send_frames(frames)
    qtbot.waitUntil(lambda: window.skipped_label.text() == "3", timeout=WAIT_MS)
    assert window.receiver.malformed == 2 and window.bad_frames == 1 and window.seq_label.text() == "2"
    service.send(make_message(seq=4, faces=[HAPPY]))
    wait_for_seq(qtbot, window, 4)
    assert window.frames_shown == 2


def test_ignores_streams_that_only_share_its_prefix(qtbot, service, open_monitor):
    window = open_monitor("cam1")
    service.send(make_message(stream="cam10", seq=100, faces=[ANGRY]))
    qtbot.waitUntil(lambda: window.receiver.other_topics == 1, timeout=WAIT_MS)
    assert window.state.last is None and window.video.pixmap() is None
    assert window.link_state is LinkState.WAITING
    service.send(make_message(stream="cam1", seq=3, faces=[HAPPY]))
    service.send(make_message(stream="cam10", seq=101, faces=[ANGRY]))
    wait_for_seq(qtbot, window, 3)
    qtbot.waitUntil(lambda: window.receiver.other_topics == 2, timeout=WAIT_MS)
    assert window.state.last.stream == "cam1" and window.seq_label.text() == "3"


# -- link state ---------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_link_state_rules_with_a_fake_clock():
    clock, wall = FakeClock(), FakeClock(1_000.0)
    state = MonitorState(clock=clock, wall_clock=wall)
    assert state.link_state() is LinkState.WAITING and state.silence_s() is None
    clock.now += 30  # nothing ever received: still waiting, however long
    assert state.link_state() is LinkState.WAITING

    state.record(make_message(jpeg=b""), image=False)  # results, but no image yet
    assert state.link_state() is LinkState.CONNECTED
    clock.now += 2.5  # silent for > 2 s while never having had frames: back to waiting
    assert state.link_state() is LinkState.WAITING

    message = make_message(seq=2)
    state.record(message, image=True)
    assert state.link_state() is LinkState.CONNECTED
    clock.now += 2.9
    assert state.link_state() is LinkState.CONNECTED  # frames seen: 3 s of grace, not 2
    clock.now += 0.2
    assert state.link_state() is LinkState.SOURCE_DOWN

    state.record(make_message(seq=3, jpeg=b""), image=False)  # header-only after frames: connected
    assert state.link_state() is LinkState.CONNECTED
    clock.now += 3.5
    assert state.link_state() is LinkState.SOURCE_DOWN  # once frames were seen, silence is "down"


def test_latency_is_wall_clock_at_paint_minus_capture_time():
    wall = FakeClock(1_000.25)
    state = MonitorState(clock=FakeClock(), wall_clock=wall)
    message = make_message()
    state.record(StreamMessage(**{**message.__dict__, "ts_capture": 1_000.0}), image=True)
    assert state.latency_ms == pytest.approx(250.0)


def test_window_shows_source_down_after_silence(qtbot, service, open_monitor):
    clock = FakeClock()
    window = open_monitor(state=MonitorState(clock=clock))
    service.send(make_message(seq=1))
    wait_for_seq(qtbot, window, 1)
    qtbot.waitUntil(lambda: window.link_label.text() == "connected", timeout=WAIT_MS)
    clock.now += 3.5
    qtbot.waitUntil(lambda: window.link_label.text() == "source down", timeout=WAIT_MS)
    service.send(make_message(seq=2))
    qtbot.waitUntil(lambda: window.link_label.text() == "connected", timeout=WAIT_MS)


# -- restarts and several monitors ----------------------------------------------------------------

def test_receives_again_after_the_service_restarts(qtbot, service, open_monitor):
    window = open_monitor()
    service.send(make_message(seq=50, faces=[HAPPY]))
    wait_for_seq(qtbot, window, 50)
    service.restart()  # same port, new socket: ZMQ on the monitor's side reconnects by itself
    qtbot.waitUntil(lambda: service.has_subscribers(cam1=1), timeout=WAIT_MS)
    restarted = make_message(seq=1, faces=[ANGRY])  # a restarted service counts from 1 again
    service.send(restarted)
    wait_for_seq(qtbot, window, 1)
    np.testing.assert_array_equal(displayed(window), expected_display(frame_jpeg(), restarted))


def test_several_monitors_at_once_and_closing_one_affects_no_other(qtbot, service, open_monitor):
    first = open_monitor("cam1", wait=False)
    second = open_monitor("cam1", wait=False)
    other = open_monitor("cam2", wait=False)
    qtbot.waitUntil(lambda: service.has_subscribers(cam1=2, cam2=1), timeout=WAIT_MS)
    service.send(make_message(stream="cam1", seq=1, faces=[HAPPY]))
    service.send(make_message(stream="cam2", seq=1, faces=[ANGRY]))
    for window in (first, second, other):
        wait_for_seq(qtbot, window, 1)
    assert other.state.last.faces == Faces.from_records([ANGRY])
    assert first.state.last.faces == Faces.from_records([HAPPY])

    first.close()
    assert first.receiver.closed and not second.receiver.closed and not other.receiver.closed
    service.send(make_message(stream="cam1", seq=2, faces=[HAPPY]))
    service.send(make_message(stream="cam2", seq=2, faces=[ANGRY]))
    wait_for_seq(qtbot, second, 2)
    wait_for_seq(qtbot, other, 2)
    assert first.state.last.seq == 1


# -- run_monitor (what `fervid monitor` calls) ---------------------------------------------------

class PublisherThread(threading.Thread):
    """Feeds frames from its own socket and thread, as the service would, until stopped."""

    def __init__(self, stream: str) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.endpoints: queue.Queue[str] = queue.Queue()
        self.stop = threading.Event()

    def run(self) -> None:
        context = zmq.Context()
        socket = context.socket(zmq.PUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind("tcp://127.0.0.1:*")
        self.endpoints.put(socket.getsockopt_string(zmq.LAST_ENDPOINT))
        seq = 0
        try:
            while not self.stop.is_set():
                seq += 1
                socket.send_multipart(encode_message(make_message(self.stream, seq, faces=[HAPPY, ANGRY])))
                time.sleep(0.03)
        finally:
            socket.close(linger=0)
            context.term()


def test_run_monitor_saves_a_screenshot_after_n_frames(qapp, tmp_path, capsys):
    feeder = PublisherThread("cam1")
    feeder.start()
    try:
        endpoint = feeder.endpoints.get(timeout=10)
        shot = tmp_path / "monitor.png"
        run_monitor("cam1", endpoint, shot, 3, timeout_s=30)
    finally:
        feeder.stop.set()
        feeder.join(10)
    assert shot.stat().st_size > 0
    image = QImage(str(shot))
    assert not image.isNull() and image.width() > 300 and image.height() > 150
    assert capsys.readouterr().err == ""


def test_run_monitor_reports_no_frames_as_its_error(qapp, tmp_path, capsys):
    """Raised, not printed: ``fervid monitor`` prints it with its ``fervid monitor: error:`` prefix."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    shot = tmp_path / "monitor.png"
    with pytest.raises(MonitorError) as caught:
        run_monitor("cam1", endpoint, shot, 2, timeout_s=0.5)
    assert str(caught.value) == f"no frames from stream cam1 on {endpoint}"
    assert capsys.readouterr().err == "" and not shot.exists()


@pytest.mark.parametrize("endpoint, frames, problem", [
    ("not an endpoint", 1, "endpoint must look like tcp://HOST:PORT, got 'not an endpoint'"),
    ("tcp://127.0.0.1:99999", 1, "endpoint port must be in 1..65535, got 99999 in 'tcp://127.0.0.1:99999'"),
    ("tcp://127.0.0.1:5556", 0, "--frames must be at least 1"),
])
def test_run_monitor_rejects_bad_arguments_before_waiting(qapp, tmp_path, capsys, endpoint, frames, problem):
    """An impossible port was accepted and the monitor waited for the whole timeout."""
    started = time.monotonic()
    with pytest.raises(MonitorError) as caught:
        run_monitor("cam1", endpoint, tmp_path / "x.png", frames, timeout_s=30)
    assert str(caught.value) == problem
    assert time.monotonic() - started < 10, "refused up front, not after the wait for frames"
    assert capsys.readouterr().err == ""


# -- JPEG safety -----------------------------------------------------------------------------------

def test_jpeg_size_is_read_without_decoding_and_absurd_sizes_are_refused():
    height, width = frame_bgr().shape[:2]
    assert jpeg_dimensions(frame_jpeg()) == (width, height)
    assert decode_frame(frame_jpeg()).shape == (height, width, 3)
    jpeg = bytearray(frame_jpeg())
    sof = next(i for i in range(2, len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC2))
    jpeg[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2  # declares 60000 x 60000 pixels
    assert jpeg_dimensions(bytes(jpeg)) == (60000, 60000) and decode_frame(bytes(jpeg)) is None
    assert decode_frame(b"\xff\xd8 garbage") is None and jpeg_dimensions(b"") is None


def test_the_monitor_imports_no_ray_and_no_service_code():
    """gui/ talks to the service only over ZMQ through fervid.comms (docs/architecture.md, "Layers")."""
    code = ("import sys, fervid.gui.monitor; print(sorted(m for m in sys.modules if m == 'ray' or m.startswith("
            "('ray.', 'fervid.services'))), 'fervid.comms.messages' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] True"
