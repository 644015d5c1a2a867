"""Publisher: results (and, for watched streams, JPEG frames) out over ZMQ.

An XPUB socket reports subscriptions, so the publisher knows which streams somebody watches
and JPEG-encodes only those frames: for an unwatched stream a frame is never fetched from
the object store at all. It is also where a frame's journey ends, so per-frame metrics
(processed, faces, expressions, latency, stage times) are recorded here.
"""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
import ray
import zmq

from fervid.models.faces import Faces
from fervid.comms.messages import StreamMessage, encode_message
from fervid.services.runtime import Telemetry


class SubscriptionTracker:
    """Which topic prefixes subscribers hold, from XPUB's subscribe/unsubscribe messages.

    ZMQ matches by prefix: a subscription to ``cam`` receives ``cam1`` and ``cam2``, and the
    empty subscription receives everything; ``is_watched`` follows the same rule.
    """

    def __init__(self) -> None:
        self._prefixes: dict[bytes, int] = {}

    def feed(self, message: bytes) -> None:
        if not message or message[0] not in (0, 1):
            return
        topic = bytes(message[1:])
        if message[0] == 1:
            self._prefixes[topic] = self._prefixes.get(topic, 0) + 1
        elif topic in self._prefixes:
            self._prefixes[topic] -= 1
            if self._prefixes[topic] <= 0:
                del self._prefixes[topic]

    def is_watched(self, stream: str) -> bool:
        name = stream.encode()
        return any(name.startswith(prefix) for prefix in self._prefixes)


def build_message(meta: dict, boxes: np.ndarray, probabilities: np.ndarray, jpeg: bytes) -> StreamMessage:
    faces = Faces(boxes, probabilities)
    return StreamMessage(stream=meta["stream"], seq=meta["seq"], ts_capture=meta["ts_capture"],
                         ts_publish=time.time(), width=meta["width"], height=meta["height"],
                         fps=meta["fps"], faces=faces, jpeg=jpeg)


class PublisherSocket:
    """The publishing end without Ray: an XPUB socket, optionally CURVE-encrypted, and the
    subscriptions it reports.

    ``curve`` (``services.config.CurveConfig`` or anything with ``server_secret_key`` and
    ``authorized_clients``) makes it a CURVE server: only clients holding an authorized key
    (any key when ``authorized_clients`` is ``None``) complete the handshake, so nobody else
    subscribes or reads a byte. A port or key that cannot be used is reported in ``error``
    (one line) instead of raising.
    """

    def __init__(self, endpoint: str, curve=None, *, sndhwm: int = 64):
        self.endpoint = endpoint
        self.tracker = SubscriptionTracker()
        self.error: str | None = None
        self._curve = None
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        # Subscriptions are a prefix byte plus a stream name: nothing longer is worth reading.
        self._socket.setsockopt(zmq.MAXMSGSIZE, 4096)
        if curve is not None:
            from fervid.comms.curve import CurveKeyError, CurveServer

            try:
                self._curve = CurveServer(self._context, curve.server_secret_key, curve.authorized_clients)
                self._curve.apply(self._socket)
            except CurveKeyError as exc:
                self.error = f"cannot set up CURVE for the ZMQ publisher: {exc}"
                return  # never bind without the encryption the config asked for
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self.error = f"cannot bind the ZMQ publisher to {endpoint}: {exc.strerror}"

    @property
    def curve_public_key(self) -> bytes | None:
        return self._curve.public_key if self._curve is not None else None

    def drain_subscriptions(self) -> None:
        while True:
            try:
                self.tracker.feed(self._socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                return

    def is_watched(self, stream: str) -> bool:
        return self.tracker.is_watched(stream)

    def send(self, frames: list[bytes]) -> bool:
        """Send without blocking; False when every subscriber's queue is full (message lost)."""
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def close(self) -> None:
        if not self._socket.closed:
            self._socket.close(linger=0)
        if self._curve is not None:
            self._curve.stop()
            self._curve = None
        self._context.term()


@ray.remote
class PublisherActor:
    KIND = "publisher"

    def __init__(self, endpoint: str, jpeg_quality: int = 80, metrics_actor=None, curve=None):
        self._telemetry = Telemetry(metrics_actor)
        self._telemetry.report_restart_if_any(self.KIND)
        self._endpoint = endpoint
        self._quality = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        self._last_seq: dict[str, int] = {}
        # A bad port or key is reported through ``check`` so the CLI can print it; raising here
        # would make Ray restart the actor in a loop against the same busy port.
        self._out = PublisherSocket(endpoint, curve)
        self._error = self._out.error

    def pid(self) -> int:
        """The actor's process id (for operators and fault-injection tests)."""
        return os.getpid()

    def check(self) -> str | None:
        """``None`` when the socket is bound, else why not."""
        return self._error

    def _drain_subscriptions(self) -> None:
        self._out.drain_subscriptions()

    def watched(self, streams: list[str]) -> list[str]:
        self._drain_subscriptions()
        return [s for s in streams if self._out.is_watched(s)]

    def publish(self, meta: dict, detection, classification, frame_box: list) -> dict | None:
        """Send one frame's results; ``frame_box`` holds the frame's object ref, fetched only
        when the stream is watched. Returns what the capture actor tracks."""
        if self._error:
            raise RuntimeError(self._error)
        start = time.perf_counter()
        self._drain_subscriptions()
        stream = meta["stream"]
        if meta["seq"] <= self._last_seq.get(stream, 0):
            return None  # older than what subscribers already have: never publish out of order
        self._last_seq[stream] = meta["seq"]
        watched = self._out.is_watched(stream)
        jpeg = b""
        if watched:
            frame = ray.get(frame_box[0])
            ok, encoded = cv2.imencode(".jpg", frame, self._quality)
            jpeg = encoded.tobytes() if ok else b""
            self._telemetry.buffer.inc("fervid_frames_encoded_total", stream=stream)
        message = build_message(meta, detection.boxes, classification.probabilities, jpeg)
        # False when every subscriber is full: they read the newest frame when they catch up.
        self._out.send(encode_message(message))
        latency = message.ts_publish - meta["ts_capture"]
        self._record(stream, message, detection, classification, time.perf_counter() - start, latency, watched)
        return {"faces": len(message.faces), "latency": latency}

    def _record(self, stream, message, detection, classification, publish_s, latency, watched) -> None:
        b = self._telemetry.buffer
        b.inc("fervid_frames_processed_total", stream=stream)
        if message.faces:
            b.inc("fervid_faces_total", len(message.faces), stream=stream)
        for emotion in message.faces.emotions:
            b.inc("fervid_expressions_total", stream=stream, emotion=emotion)
        b.observe("fervid_latency_seconds", latency, stream=stream)
        b.observe("fervid_stage_seconds", detection.seconds, stream=stream, stage="detect")
        b.observe("fervid_stage_seconds", classification.seconds, stream=stream, stage="infer")
        b.observe("fervid_stage_seconds", publish_s, stream=stream, stage="publish")
        b.set("fervid_stream_watched", 1.0 if watched else 0.0, stream=stream)

    def last_seq(self, stream: str) -> int:
        """Sequence number of the stream's last published frame (0 if none)."""
        return self._last_seq.get(stream, 0)

    def forget_stream(self, stream: str) -> None:
        self._last_seq.pop(stream, None)

    def close(self) -> None:
        self._telemetry.close()
        self._out.close()
