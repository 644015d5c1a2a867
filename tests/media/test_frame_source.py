"""FrameSource on real media: the sample clip (files) and a real MJPEG HTTP camera.

Timing bounds are deliberately generous: the test machine is a noisy 2-core box.
"""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from fervid.media.frame_source import Backoff, FrameSource, StreamState
from fervid.media.sources import parse_source
from tests.conftest import SAMPLE_CLIP
from tests.helpers.mjpeg_server import MjpegServer

CLIP_FRAMES = 275
CLIP_FPS = 29.97
CLIP_SIZE = (640, 360)


class Reader:
    """Runs ``FrameSource.frames`` in a thread and records what comes out (seq, time, size)."""

    def __init__(self, source: FrameSource):
        self.source = source
        self.stop = threading.Event()
        self.frames: list[tuple[int, float, tuple[int, int]]] = []
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for frame in self.source.frames(self.stop):
                self.frames.append((frame.seq, time.monotonic(), (frame.image.shape[1], frame.image.shape[0])))
        except BaseException as exc:  # recorded so the test fails loudly instead of a silent thread death
            self.errors.append(exc)

    def __enter__(self) -> "Reader":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "frames() did not return after stop was set"

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _, _ in self.frames]

    def wait_for(self, condition, timeout: float, what: str) -> float:
        """Poll until ``condition()``; returns the seconds it took."""
        start = time.monotonic()
        while not condition():
            assert not self.errors, f"frames() raised {self.errors[0]!r}"
            if time.monotonic() - start > timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; state="
                                     f"{self.source.state}, last_error={self.source.last_error!r}, "
                                     f"frames={len(self.frames)}")
            time.sleep(0.02)
        return time.monotonic() - start


def file_source(path=SAMPLE_CLIP, **kwargs) -> FrameSource:
    return FrameSource(parse_source(str(path)), **kwargs)


def test_paced_file_is_delivered_at_roughly_its_own_frame_rate():
    """With pace on, a file behaves like a camera at its stored fps (29.97), not as fast as decoding."""
    source = file_source(pace=True)
    with Reader(source) as reader:
        reader.wait_for(lambda: len(reader.frames) >= 2, 10, "the first frames")
        time.sleep(2.0)
    times = [t for _, t, _ in reader.frames]
    fps = (len(times) - 1) / (times[-1] - times[0])
    assert 15 <= fps <= 45, f"paced delivery at {fps:.1f} fps"
    assert source.source_fps == pytest.approx(CLIP_FPS, abs=0.1)
    assert source.frame_size == CLIP_SIZE


def test_unpaced_file_is_read_faster_than_its_frame_rate():
    """pace=False hands frames over as fast as they are taken: well above the 30 fps that pacing gives."""
    with Reader(file_source(pace=False)) as reader:
        reader.wait_for(lambda: len(reader.frames) >= 150, 30, "150 frames")
    times = [t for _, t, _ in reader.frames[:150]]
    fps = 149 / (times[-1] - times[0])
    assert fps > 2 * CLIP_FPS, f"unpaced delivery at only {fps:.1f} fps"


def test_sequence_numbers_increase_by_one_after_first_seq():
    """A restarted capture continues numbering after the last published frame: first is first_seq + 1."""
    with Reader(file_source(pace=False, first_seq=41)) as reader:
        reader.wait_for(lambda: len(reader.frames) >= 50, 30, "50 frames")
    seqs = reader.seqs
    assert seqs[0] == 42
    assert seqs == list(range(42, 42 + len(seqs)))


def test_a_file_runs_on_its_own_media_time_however_fast_it_is_read_and_across_loops():
    """Tracking and smoothing run on ``CapturedFrame.ts``: for a file, frames read over the file's
    own rate (29.97), whether it is read unpaced or slowed down by an fps override, on past the
    end of a looping file; the wall-clock ``ts_capture`` stays what latency is measured from."""
    for source in (file_source(pace=False, loop=True), file_source(pace=True, fps=200.0, loop=True)):
        stop = threading.Event()
        frames = []
        for frame in source.frames(stop):
            frames.append(frame)
            if len(frames) == CLIP_FRAMES + 3:
                stop.set()
        times = [frame.ts for frame in frames]
        assert source.source_fps == pytest.approx(CLIP_FPS, abs=0.01)
        assert times == pytest.approx([i / source.source_fps for i in range(CLIP_FRAMES + 3)], abs=1e-6)
        assert all(frame.ts_stream == frame.ts for frame in frames)
        assert frames[-1].ts_capture - frames[0].ts_capture < times[-1]  # read faster than it plays


def test_non_looping_file_finishes_after_its_last_frame():
    """Without loop, a file ends: every one of its 275 frames, then state FINISHED and frames() returns."""
    source = file_source(pace=False, loop=False)
    stop = threading.Event()
    seqs = [frame.seq for frame in source.frames(stop)]  # returns by itself at the end of the file
    assert seqs == list(range(1, CLIP_FRAMES + 1))
    assert source.state is StreamState.FINISHED
    assert source.reconnects == 0


def test_looping_file_continues_past_its_end_without_a_gap():
    """With loop, the end of the file is not the end of the stream, and numbering does not restart."""
    source = file_source(pace=False, loop=True)
    with Reader(source) as reader:
        reader.wait_for(lambda: len(reader.frames) >= CLIP_FRAMES + 30, 60, "frames past the end")
        assert source.state is StreamState.UP
    seqs = reader.seqs
    assert seqs == list(range(1, len(seqs) + 1))
    assert source.reconnects == 0  # looping is not a reconnection
    assert source.state is StreamState.STOPPED


def test_looping_file_that_vanishes_goes_down_and_comes_back(tmp_path):
    """A looping file renamed away cannot be reopened at its end (DOWN, reason kept); renamed back,
    the stream is UP again, counted as a reconnection, and numbering carries on."""
    clip = tmp_path / "clip.mp4"
    shutil.copy(SAMPLE_CLIP, clip)
    source = file_source(clip, pace=False, loop=True, reconnect_initial_s=0.05, reconnect_max_s=0.2)
    with Reader(source) as reader:
        reader.wait_for(lambda: source.state is StreamState.UP, 10, "UP")
        clip.rename(tmp_path / "away.mp4")
        reader.wait_for(lambda: source.state is StreamState.DOWN, 20, "DOWN after the file vanished")
        assert "cannot open" in source.last_error and "clip.mp4" in source.last_error
        before = len(reader.frames)
        time.sleep(0.5)  # several failed reopen attempts
        assert source.state is StreamState.DOWN and source.reconnects == 0
        (tmp_path / "away.mp4").rename(clip)
        reader.wait_for(lambda: len(reader.frames) > before + 10, 20, "frames after the file came back")
        assert source.state is StreamState.UP
        assert source.last_error is None
        assert source.reconnects == 1
    seqs = reader.seqs
    assert seqs == list(range(1, len(seqs) + 1))


def test_file_that_is_not_a_video_stays_down_without_raising(tmp_path):
    """A text file named .mp4 passes parse_source (it exists) but never opens: DOWN, retried, no exception."""
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 100)
    source = file_source(fake, pace=False, reconnect_initial_s=0.05, reconnect_max_s=0.1)
    with Reader(source) as reader:
        reader.wait_for(lambda: source.state is StreamState.DOWN, 10, "DOWN")
        time.sleep(0.5)
        assert source.state is StreamState.DOWN
        assert "notes.mp4" in source.last_error
    assert reader.frames == [] and reader.errors == []
    assert source.state is StreamState.STOPPED  # stopped by us, not finished


def test_a_source_that_never_opens_counts_its_open_attempts(tmp_path):
    """``reconnects`` counts only reopens that worked, so a source that never opens shows 0 for
    ever; ``open_attempts`` shows it is being retried (once, then once per back-off delay)."""
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 100)
    source = file_source(fake, pace=False, reconnect_initial_s=0.05, reconnect_max_s=0.1)
    assert source.open_attempts == 0
    with Reader(source) as reader:
        reader.wait_for(lambda: source.open_attempts >= 4, 10, "four attempts to open the file")
    assert source.reconnects == 0 and reader.frames == []


def test_open_attempts_of_a_file_that_opens_at_once():
    source = file_source(pace=False, loop=False)
    frames = sum(1 for _ in source.frames(threading.Event()))
    assert frames == CLIP_FRAMES and source.open_attempts == 1


def test_backoff_doubles_caps_and_resets():
    """Reopen delays grow 0.5, 1, 2, 4 and stay at the cap; a good frame starts them over."""
    backoff = Backoff(0.5, 4.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_cap_below_a_doubling_step_is_honoured():
    """The cap holds even when it is not a power-of-two multiple of the first delay."""
    backoff = Backoff(0.3, 1.0)
    assert [backoff.next_delay() for _ in range(4)] == pytest.approx([0.3, 0.6, 1.0, 1.0])


@pytest.fixture
def camera():
    server = MjpegServer.from_video(SAMPLE_CLIP, fps=20.0).start()
    yield server
    server.stop()


def mjpeg_source(url: str) -> FrameSource:
    return FrameSource(parse_source(url), open_timeout_s=2.0, read_timeout_s=2.0,
                       reconnect_initial_s=0.1, reconnect_max_s=0.5)


def test_mjpeg_camera_that_goes_away_is_down_then_reconnected(camera):
    """A real HTTP MJPEG camera: frames flow; the camera stops (connections closed, port closed) ->
    DOWN within the read timeout plus slack; it restarts on the same port -> UP, reconnects >= 1."""
    source = mjpeg_source(camera.url)
    assert not source.pace  # live sources deliver at their own rate
    with Reader(source) as reader:
        reader.wait_for(lambda: len(reader.frames) >= 10, 15, "frames from the camera")
        assert source.state is StreamState.UP
        assert reader.frames[0][2] == CLIP_SIZE
        camera.stop()
        reader.wait_for(lambda: source.state is StreamState.DOWN, 2.0 + 5, "DOWN after the camera stopped")
        assert source.last_error and str(camera.port) in source.last_error
        time.sleep(0.5)
        assert source.state is StreamState.DOWN
        before = len(reader.frames)
        camera.start()
        reader.wait_for(lambda: len(reader.frames) >= before + 10, 15, "frames after the camera restarted")
        assert source.state is StreamState.UP
        assert source.reconnects >= 1
    seqs = reader.seqs
    assert seqs == list(range(1, len(seqs) + 1))


def test_mjpeg_camera_that_hangs_is_detected_by_the_read_timeout(camera):
    """A camera that keeps the connection open but sends nothing must not block the stream forever:
    DOWN after about read_timeout_s, and UP again once frames flow."""
    source = mjpeg_source(camera.url)
    with Reader(source) as reader:
        reader.wait_for(lambda: len(reader.frames) >= 5, 15, "frames from the camera")
        camera.frozen.set()
        took = reader.wait_for(lambda: source.state is StreamState.DOWN, 2.0 + 8, "DOWN while the camera hangs")
        assert took >= 1.0, "went DOWN long before the read timeout"
        before = len(reader.frames)
        camera.frozen.clear()
        reader.wait_for(lambda: len(reader.frames) >= before + 5, 15, "frames after the camera recovered")
        assert source.state is StreamState.UP and source.reconnects >= 1


def test_mjpeg_server_stop_closes_the_port_and_every_stream(camera):
    """The helper itself: stop() ends open streams (the client sees EOF) and refuses new connections;
    start() serves again on the same port."""
    import socket

    client = socket.create_connection(("127.0.0.1", camera.port), timeout=5)
    client.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
    assert client.recv(4096).startswith(b"HTTP/1.0 200")
    port = camera.port
    camera.stop()
    assert camera.open_connections == 0
    client.settimeout(5)
    received = b""
    while True:  # drain what was sent before the stop; then the server's close shows as EOF
        chunk = client.recv(65536)
        if not chunk:
            break
        received += chunk
    client.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    camera.start()
    assert camera.port == port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as again:
        again.sendall(b"GET /nothing HTTP/1.0\r\n\r\n")
        assert again.recv(4096).startswith(b"HTTP/1.0 404")


def test_a_live_camera_runs_on_the_wall_clock(camera):
    source = mjpeg_source(camera.url)
    stop = threading.Event()
    frames = []
    for frame in source.frames(stop):
        frames.append(frame)
        if len(frames) == 3:
            stop.set()
    assert all(frame.ts_stream is None and frame.ts == frame.ts_capture for frame in frames)
    assert abs(frames[-1].ts - time.time()) < 5
