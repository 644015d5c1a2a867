"""Publisher: one frame's results (and, for a watched stream, its JPEG) out over ZMQ.

It receives only what goes on the wire: the frame's metadata, its classified ``Faces`` and, when
somebody watches the stream, the JPEG bytes the capture actor encoded (it holds the frame
anyway). It never reads a frame from the object store. What it returns tells the capture actor
whether the stream is watched, so the capture knows whether to encode the next frame; per-frame
metrics are the capture actor's, which sees every outcome. The socket itself, without Ray, is
``fervid.comms.publisher_socket``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import ray

from fervid.comms.messages import StreamMessage, encode_message
from fervid.comms.publisher_socket import PublisherSocket
from fervid.models.faces import Faces
from fervid.services.runtime import Telemetry


def build_message(meta: dict, faces: Faces, jpeg: bytes) -> StreamMessage:
    return StreamMessage(stream=meta["stream"], seq=meta["seq"], ts_capture=meta["ts_capture"],
                         ts_publish=time.time(), width=meta["width"], height=meta["height"],
                         fps=meta["fps"], faces=faces, jpeg=jpeg)


@dataclass(frozen=True)
class Published:
    """What ``PublisherActor.publish`` tells the capture actor about one frame."""

    sent: bool
    """False when the frame was older than one already sent for its stream (never sent out of order)."""
    watched: bool
    """Whether some subscriber receives the stream: the capture encodes JPEG only then."""
    ts_publish: float
    """``time.time()`` when the message was built (latency is measured to here)."""
    seconds: float
    """Time spent publishing, for ``fervid_stage_seconds{stage="publish"}``."""


@ray.remote
class PublisherActor:
    KIND = "publisher"

    def __init__(self, endpoint: str, jpeg_quality: int = 80, metrics_actor=None, curve=None):
        self._telemetry = Telemetry(metrics_actor)
        self._telemetry.report_restart_if_any(self.KIND)
        self._endpoint = endpoint
        self._jpeg_quality = int(jpeg_quality)
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

    def jpeg_quality(self) -> int:
        """The JPEG quality (``publisher.jpeg_quality``) capture actors encode watched frames with."""
        return self._jpeg_quality

    def publish(self, meta: dict, classification, jpeg: bytes = b"") -> Published:
        """Send one frame: ``meta`` (stream, seq, ts_capture, width, height, fps), its
        ``Classification`` and the JPEG bytes (empty for an unwatched stream)."""
        if self._error:
            raise RuntimeError(self._error)
        start = time.perf_counter()
        self._out.drain_subscriptions()
        stream = meta["stream"]
        watched = self._out.is_watched(stream)
        if meta["seq"] <= self._last_seq.get(stream, 0):  # older than what subscribers already have
            return Published(False, watched, time.time(), time.perf_counter() - start)
        self._last_seq[stream] = meta["seq"]
        message = build_message(meta, classification.faces, jpeg)
        # False when every subscriber is full: they read the newest frame when they catch up.
        self._out.send(encode_message(message))
        return Published(True, watched, message.ts_publish, time.perf_counter() - start)

    def is_watched(self, stream: str) -> bool:
        """Whether a subscriber holds ``stream`` now (a capture actor asks once at start, so a restarted
        one encodes a watched stream's first frames too; after that each publish result says)."""
        self._out.drain_subscriptions()
        return self._out.is_watched(stream)

    def last_seq(self, stream: str) -> int:
        """Sequence number of the stream's last published frame (0 if none)."""
        return self._last_seq.get(stream, 0)

    def forget_stream(self, stream: str) -> None:
        self._last_seq.pop(stream, None)

    def close(self) -> None:
        self._telemetry.close()
        self._out.close()
