"""One stream's ZMQ subscription, drained so that a viewer never falls behind.

A high-water mark does not bound latency (TCP buffers hold more) and ``CONFLATE`` does not work
with multipart messages (design.md, "Verified facts"), so the only way to show the newest frame is
to read everything pending and keep the last one. ZMQ subscriptions match by prefix, so a
subscription to ``cam1`` also delivers ``cam10``; the topic is compared exactly here.
ZMQ reconnects by itself when the publisher restarts, so there is no reconnect logic here; but
the SUB socket re-sends its subscription to the new publisher only when its owner next touches
it (verified with libzmq 4.3.5), which the monitor's timer does every tick by calling ``poll``.
"""
from __future__ import annotations

import zmq

from services.messages import MessageError, StreamMessage, decode_message

DEFAULT_RCVHWM = 32
"""Enough for about a second of one stream; more only adds frames that will be skipped anyway."""

MAX_DRAIN_PER_POLL = 10_000
"""Bound on messages read in one ``poll`` so a publisher faster than us cannot pin the GUI thread."""


class StreamReceiver:
    """A SUB socket on one stream: ``poll`` returns the newest valid message, without blocking."""

    def __init__(self, stream: str, endpoint: str, *, context: zmq.Context | None = None,
                 rcvhwm: int = DEFAULT_RCVHWM) -> None:
        if not stream:
            raise ValueError("stream name must not be empty (it would subscribe to every stream)")
        self.stream = stream
        self.endpoint = endpoint
        self._topic = stream.encode()
        self.received = 0
        """Messages of this exact stream read off the socket (valid or not)."""
        self.malformed = 0
        """Messages of this stream rejected by ``decode_message``; skipped, never raised."""
        self.other_topics = 0
        """Messages of streams sharing our prefix (``cam10`` for ``cam1``); skipped."""
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        try:
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
            # Retry quickly after a service restart, but do not hammer a host that stays down.
            self._socket.setsockopt(zmq.RECONNECT_IVL, 100)
            self._socket.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            self._socket.setsockopt(zmq.SUBSCRIBE, self._topic)
            self._socket.connect(endpoint)
        except zmq.ZMQError:
            self._socket.close(linger=0)
            raise

    @property
    def closed(self) -> bool:
        return self._socket.closed

    def poll(self) -> StreamMessage | None:
        """Read every pending message; return the newest valid one of this stream, or ``None``."""
        if self._socket.closed:
            return None
        newest: StreamMessage | None = None
        for _ in range(MAX_DRAIN_PER_POLL):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if not frames or frames[0] != self._topic:
                self.other_topics += 1
                continue
            self.received += 1
            try:
                newest = decode_message(frames)
            except MessageError:
                self.malformed += 1
        return newest

    def close(self) -> None:
        """Close this socket only; other receivers sharing the context are unaffected."""
        if not self._socket.closed:
            self._socket.close(linger=0)
