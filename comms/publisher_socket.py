"""The publishing end of the wire without Ray: an XPUB socket, optionally CURVE-encrypted, and
which streams its subscribers watch.

An XPUB socket reports every subscribe and unsubscribe, so the publisher knows which streams
somebody watches and the service JPEG-encodes only those frames. The service's publisher actor
wraps this; tests and tools use it directly.
"""
from __future__ import annotations

import zmq


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


class PublisherSocket:
    """An XPUB socket bound to ``endpoint``, and the subscriptions it reports.

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
