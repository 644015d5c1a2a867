"""Real ZMQ publishing for the GUI tests: ``FakeService`` and the messages it sends.

``FakeService`` is the service's publishing end, a real XPUB socket bound the way
services/publisher.py binds it, so tests wait for subscriptions to arrive instead of sleeping
(no slow-joiner races). The messages carry a real photo as their JPEG frame.
"""
from __future__ import annotations

import functools
import random
import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np
import zmq

from fervid.models.labels import EMOTIONS
from fervid.benchmarks.service_run import FREE_PORT_RANGE
from fervid.comms.messages import StreamMessage, encode_message
from fervid.models.faces import Faces
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


def face(box: tuple[int, int, int, int], emotion: str, confidence: float) -> dict:
    """One face as a record (``Faces.to_records`` shape) whose top class is ``emotion``."""
    rest = round((1.0 - confidence) / (len(EMOTIONS) - 1), 6)
    probabilities = {name: (confidence if name == emotion else rest) for name in EMOTIONS}
    return {"box": list(box), "emotion": emotion, "confidence": confidence, "probabilities": probabilities}


def make_message(stream: str = "cam1", seq: int = 1, faces: list[dict] | None = None,
                 jpeg: bytes | None = None, fps: float = 25.0, age_s: float = 0.05) -> StreamMessage:
    """A message as the publisher sends it; ``jpeg=None`` means the real frame, ``b""`` none."""
    height, width = frame_bgr().shape[:2]
    now = time.time()
    return StreamMessage(stream=stream, seq=seq, ts_capture=now - age_s, ts_publish=now, width=width,
                         height=height, fps=fps, faces=Faces.from_records(faces or []),
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
                self._bind(f"tcp://127.0.0.1:{random.randrange(*FREE_PORT_RANGE)}", retry=False)
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
