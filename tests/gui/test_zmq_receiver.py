"""StreamReceiver against a real XPUB socket on loopback, publishing real encoded messages.

The helpers here (``FakeService``, ``make_message``, ``frame_jpeg``) are shared with
test_monitor.py: a real XPUB socket bound the way services/publisher.py binds it, so the tests
wait for the subscription to arrive instead of sleeping (no slow-joiner races).
"""
from __future__ import annotations

import functools
import random
import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np
import pytest
import zmq

from gui.zmq_receiver import StreamReceiver
from models.labels import EMOTIONS
from services.messages import FaceRecord, StreamMessage, encode_message
from tests.conftest import TWO_PEOPLE

WAIT_S = 15.0
"""Generous: these tests must pass on a busy 2-core machine; they return as soon as it is done."""


@functools.lru_cache(maxsize=1)
def frame_bgr() -> np.ndarray:
    """A real photo at half size (560x330), as the service would capture it."""
    image = cv2.imread(str(TWO_PEOPLE))
    assert image is not None, TWO_PEOPLE
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


@functools.lru_cache(maxsize=1)
def frame_jpeg() -> bytes:
    ok, encoded = cv2.imencode(".jpg", frame_bgr(), [int(cv2.IMWRITE_JPEG_QUALITY), 80])
    assert ok
    return encoded.tobytes()


def face(box: tuple[int, int, int, int], emotion: str, confidence: float) -> FaceRecord:
    rest = (1.0 - confidence) / (len(EMOTIONS) - 1)
    probabilities = {name: (confidence if name == emotion else rest) for name in EMOTIONS}
    return FaceRecord(box, emotion, confidence, probabilities)


def make_message(stream: str = "cam1", seq: int = 1, faces: list[FaceRecord] | None = None,
                 jpeg: bytes | None = None, fps: float = 25.0, age_s: float = 0.05) -> StreamMessage:
    """A message as the publisher sends it; ``jpeg=None`` means the real frame, ``b""`` none."""
    height, width = frame_bgr().shape[:2]
    now = time.time()
    return StreamMessage(stream=stream, seq=seq, ts_capture=now - age_s, ts_publish=now, width=width,
                         height=height, fps=fps, faces=list(faces or []),
                         jpeg=frame_jpeg() if jpeg is None else jpeg)


class FakeService:
    """The service's publishing end: a real XPUB socket on a free loopback port.

    ``XPUB_VERBOSE`` passes every subscription up (not just the first per topic), so a test can
    wait until each of several monitors has subscribed before publishing. Ports come from below
    Linux's ephemeral range: a SUB retrying a connect to a closed ephemeral port on loopback can
    connect to itself and occupy the port the restarted service needs (the service uses 5556).
    """

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.socket: zmq.Socket | None = None
        self.endpoint = ""
        self._subscriptions: Counter[bytes] = Counter()
        for _ in range(100):
            try:
                self._bind(f"tcp://127.0.0.1:{random.randrange(20000, 32000)}", retry=False)
                return
            except zmq.ZMQError as exc:
                if exc.errno != zmq.EADDRINUSE:
                    raise
        raise AssertionError("no free port found")

    def _bind(self, endpoint: str, retry: bool = True) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            socket = self.context.socket(zmq.XPUB)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.XPUB_VERBOSE, 1)
            socket.setsockopt(zmq.SNDHWM, 1000)
            try:
                socket.bind(endpoint)
                break
            except zmq.ZMQError as exc:  # a closed socket's port is released asynchronously
                socket.close(linger=0)
                if not retry or exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.socket = socket
        self.endpoint = endpoint
        self._subscriptions.clear()

    def has_subscribers(self, **counts: int) -> bool:
        """Whether ``stream=n`` subscriptions have arrived for each stream named (non-blocking)."""
        while self.socket.poll(0):
            event = self.socket.recv()
            if event[:1] == b"\x01":
                self._subscriptions[event[1:]] += 1
        return all(self._subscriptions[name.encode()] >= n for name, n in counts.items())

    def wait_for_subscribers(self, pump: Callable[[], object] = lambda: None, **counts: int) -> None:
        """Block until ``has_subscribers(**counts)``, calling ``pump`` meanwhile: a SUB re-sends
        its subscriptions after a reconnect only when its owner next touches the socket."""
        deadline = time.monotonic() + WAIT_S
        while not self.has_subscribers(**counts):
            if time.monotonic() > deadline:
                raise AssertionError(f"subscriptions {counts} did not arrive; got {dict(self._subscriptions)}")
            pump()
            time.sleep(0.01)

    def send(self, message: StreamMessage) -> None:
        self.socket.send_multipart(encode_message(message))

    def send_frames(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def restart(self) -> None:
        """Close the socket and bind a new one on the same port, like a restarted service."""
        self.socket.close(linger=0)
        self._bind(self.endpoint)

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def receivers():
    """Receivers made through this are closed after the test, whatever happens."""
    made: list[StreamReceiver] = []

    def make(stream: str, endpoint: str, **kwargs) -> StreamReceiver:
        made.append(StreamReceiver(stream, endpoint, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def poll_until(receiver: StreamReceiver, done, timeout: float = WAIT_S) -> list[StreamMessage]:
    """Poll like the monitor's timer does, collecting what each poll returns, until ``done(got)``."""
    got: list[StreamMessage] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got seqs {[m.seq for m in got]}")
        message = receiver.poll()
        if message is not None:
            got.append(message)
        else:
            time.sleep(0.01)
    return got


def settle(receiver: StreamReceiver) -> None:
    """Wait until data is readable, then a little longer for the rest of a burst to arrive."""
    assert receiver._socket.poll(int(WAIT_S * 1000)), "nothing arrived"
    time.sleep(0.5)


def test_poll_returns_a_real_message_decoded(service, receivers):
    receiver = receivers("cam1", service.endpoint)
    service.wait_for_subscribers(cam1=1)
    sent = make_message(seq=3, faces=[face((10, 20, 30, 40), "happy", 0.8)])
    service.send(sent)
    [got] = poll_until(receiver, lambda got: got)
    assert (got.stream, got.seq, got.faces, got.jpeg) == ("cam1", 3, sent.faces, frame_jpeg())
    assert receiver.poll() is None and receiver.received == 1 and receiver.malformed == 0


def test_drains_a_backlog_in_one_poll_and_returns_the_newest(service, receivers):
    receiver = receivers("cam1", service.endpoint, rcvhwm=1000)
    service.wait_for_subscribers(cam1=1)
    for seq in range(1, 41):
        service.send(make_message(seq=seq, jpeg=b""))
    settle(receiver)
    newest = receiver.poll()
    assert newest is not None and newest.seq == 40
    assert receiver.received == 40 and receiver.poll() is None


def test_catches_up_quickly_when_the_backlog_exceeds_the_high_water_mark(service, receivers):
    """With the default (small) RCVHWM the rest of a burst waits in TCP buffers; a few polls
    later the newest frame is shown, and never an older one after a newer."""
    receiver = receivers("cam1", service.endpoint)
    service.wait_for_subscribers(cam1=1)
    for seq in range(1, 101):
        service.send(make_message(seq=seq))
    settle(receiver)
    got = poll_until(receiver, lambda got: got and got[-1].seq == 100)
    seqs = [m.seq for m in got]
    assert seqs == sorted(set(seqs)) and seqs[0] > 1 and len(seqs) <= 20, seqs


def test_exact_topic_only_cam1_ignores_cam10(service, receivers):
    receiver = receivers("cam1", service.endpoint)
    service.wait_for_subscribers(cam1=1)
    service.send(make_message(stream="cam10", seq=100))
    service.send(make_message(stream="cam1", seq=7))
    service.send(make_message(stream="cam10", seq=101))
    got = poll_until(receiver, lambda got: got and receiver.other_topics == 2)
    assert [(m.stream, m.seq) for m in got] == [("cam1", 7)]
    assert receiver.received == 1 and receiver.malformed == 0


def test_malformed_messages_are_counted_and_skipped(service, receivers):
    receiver = receivers("cam1", service.endpoint)
    service.wait_for_subscribers(cam1=1)
    good = encode_message(make_message(seq=5, jpeg=b""))
    wrong_stream = encode_message(make_message(stream="cam2", seq=6, jpeg=b""))
    bad = [
        [b"cam1"],                                       # wrong number of frames
        [b"cam1", b"{not json", b""],                    # header is not JSON
        [b"cam1", wrong_stream[1], b""],                 # header names another stream
        [b"cam1", good[1], b"PNG, not a JPEG"],          # image frame is not a JPEG
    ]
    for frames in bad:
        service.send_frames(frames)
    service.send_frames(good)
    got = poll_until(receiver, lambda got: got and receiver.received == 5)
    assert [m.seq for m in got] == [5] and receiver.malformed == 4
    # A malformed message after a good one: the good one is still returned.
    service.send(make_message(seq=8, jpeg=b""))
    service.send_frames(bad[1])
    got = poll_until(receiver, lambda got: receiver.received == 7 and got)
    assert got[-1].seq == 8 and receiver.malformed == 5


def test_receives_again_after_the_publisher_restarts_on_the_same_port(service, receivers):
    receiver = receivers("cam1", service.endpoint)
    service.wait_for_subscribers(cam1=1)
    service.send(make_message(seq=50))
    assert poll_until(receiver, lambda got: got)[-1].seq == 50
    service.restart()
    # ZMQ reconnects and re-sends the subscription by itself, while the receiver is being polled.
    service.wait_for_subscribers(pump=receiver.poll, cam1=1)
    service.send(make_message(seq=1))  # a restarted service counts from 1 again
    assert poll_until(receiver, lambda got: got)[-1].seq == 1


def test_closing_one_receiver_leaves_another_on_the_same_stream_working(service, receivers):
    first, second = receivers("cam1", service.endpoint), receivers("cam1", service.endpoint)
    service.wait_for_subscribers(cam1=2)
    first.close()
    first.close()  # idempotent
    assert first.closed and first.poll() is None
    service.send(make_message(seq=9))
    assert poll_until(second, lambda got: got)[-1].seq == 9


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError):
        StreamReceiver("", "tcp://127.0.0.1:5556")  # '' would subscribe to every stream
    with pytest.raises(zmq.ZMQError):
        StreamReceiver("cam1", "not an endpoint")
