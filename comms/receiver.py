"""One stream's ZMQ subscription, drained so that a viewer never falls behind.

A high-water mark does not bound latency (TCP buffers hold more) and ``CONFLATE`` does not work
with multipart messages (docs/architecture.md, "Backpressure"), so the only way to show the newest frame is
to read everything pending and keep the last one. ZMQ subscriptions match by prefix, so a
subscription to ``cam1`` also delivers ``cam10``; the topic is compared exactly here.
ZMQ reconnects by itself when the publisher restarts, so there is no reconnect logic here; but
the SUB socket re-sends its subscription to the new publisher only when its owner next touches
it (verified with libzmq 4.3.5), which the monitor's timer does every tick by calling ``poll``.

Nothing off the socket is trusted: ``MAXMSGSIZE`` makes ZMQ drop a publisher that sends a frame
larger than any valid message part before the bytes are buffered (ZMQ then reconnects), and every
message goes through ``decode_message``; nothing is unpickled. With ``server_key`` the socket is
a CURVE client (``fervid.comms.curve``): encrypted, and admitted only by a publisher with that key.

Receivers share the process's ZMQ context, so one receiver must never block its I/O thread: the
connection events a receiver follows wait on an unbounded queue until ``poll`` (``_open_monitor``).
"""
from __future__ import annotations

import itertools
import time
import weakref

import zmq

from fervid.comms.messages import MAX_FRAME_BYTES, MessageError, StreamMessage, decode_message

DEFAULT_RCVHWM = 32
"""Enough for about a second of one stream; more only adds frames that will be skipped anyway."""

RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 5.0
"""Back-off of the receiver's own reconnects (a publisher that keeps breaking the protocol)."""

MAX_DRAIN_PER_POLL = 10_000
"""Bound on messages read in one ``poll`` so a publisher faster than us cannot pin the GUI thread."""

BACKLOG_REFILL_MS = 10
"""After reading a backlog (half the queue or more at once), how long ``poll`` waits for ZMQ's I/O
thread to move the rest in from the TCP buffers before it gives up draining."""


MONITORED_EVENTS = (zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
"""The connection events ``poll`` acts on (a refused key, a lost peer ZMQ will not retry)."""

_MONITOR_IDS = itertools.count()
"""Makes each monitor's inproc address unique within the process (receivers share a context)."""


class StreamReceiver:
    """A SUB socket on one stream: ``poll`` returns the newest valid message, without blocking."""

    def __init__(self, stream: str, endpoint: str, *, context: zmq.Context | None = None,
                 rcvhwm: int = DEFAULT_RCVHWM, server_key=None, client_key=None,
                 max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        """``server_key``: the publisher's public key file (``NAME.key``) to speak CURVE;
        ``client_key``: this monitor's ``.key_secret`` (default: a fresh key pair). Bad key
        files raise ``fervid.comms.curve.CurveKeyError`` with one line."""
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
        self.rejected: str | None = None
        """Why the last handshake with the publisher failed (a CURVE key refused, CURVE on one
        side only), ``None`` once one succeeds: ZMQ does not retry a refused key, so without this
        a monitor would wait in silence."""
        self.reconnects = 0
        """Connections this receiver re-opened itself (ZMQ gives up on a peer that broke the
        protocol, e.g. sent a frame over ``max_frame_bytes``)."""
        self._curve = server_key is not None
        self._events: zmq.Socket | None = None
        self._reconnect_at: float | None = None
        self._backoff_s = RECONNECT_MIN_S
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        try:
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
            self._socket.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)  # per frame, checked before reading
            if server_key is not None:
                from fervid.comms.curve import apply_curve_client

                apply_curve_client(self._socket, server_key, client_key)
            elif client_key is not None:
                raise ValueError("a client key needs the publisher's public key (server_key) too")
            self._events = self._open_monitor(MONITORED_EVENTS)
            # Retry quickly after a service restart, but do not hammer a host that stays down.
            self._socket.setsockopt(zmq.RECONNECT_IVL, 100)
            self._socket.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            self._socket.setsockopt(zmq.SUBSCRIBE, self._topic)
            self._socket.connect(endpoint)
        except BaseException:
            _close_in_order(self._socket, self._events)
            raise
        # Dropped without close() (a window garbage-collected before it was closed), the two
        # sockets would be freed in any order; the finalizer holds them and closes them in the
        # order that cannot block ZMQ's I/O thread.
        self._finalizer = weakref.finalize(self, _close_in_order, self._socket, self._events)

    @property
    def closed(self) -> bool:
        return self._socket.closed

    def poll(self) -> StreamMessage | None:
        """Read every pending message; return the newest valid one of this stream, or ``None``."""
        if self._socket.closed:
            return None
        self._watch_connection()
        newest: StreamMessage | None = None
        burst = 0  # messages read since the queue was last found empty
        for _ in range(MAX_DRAIN_PER_POLL):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                # A queue found full means a backlog (the GUI thread was held up, e.g. 30 s): the
                # rest waits in TCP buffers, and stopping here would paint a frame from the start of
                # the backlog. Keep draining while it keeps coming, so the newest frame is returned.
                backlog = burst >= max(1, self._socket.getsockopt(zmq.RCVHWM) // 2)
                if not (backlog and self._socket.poll(BACKLOG_REFILL_MS)):
                    break
                burst = 0
                continue
            burst += 1
            if not frames or frames[0] != self._topic:
                self.other_topics += 1
                continue
            self.received += 1
            try:
                newest = decode_message(frames)
            except MessageError:
                self.malformed += 1
        return newest

    def _watch_connection(self) -> None:
        """Follow the connection's events; re-open a connection ZMQ will not retry by itself.

        After a disconnect ZMQ normally schedules a reconnect (``CONNECT_RETRIED``), but not
        after a protocol error such as a frame over ``MAXMSGSIZE``, nor after the publisher
        refused our CURVE key (that one stays refused: retrying the same key is pointless).
        """
        from zmq.utils.monitor import recv_monitor_message

        if self._events is None:
            return
        while self._events.poll(0):
            event = recv_monitor_message(self._events)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.rejected = None
                self._backoff_s = RECONNECT_MIN_S
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.rejected = "the publisher rejected this monitor's key (not in its authorized_clients)"
            elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self.rejected = ("CURVE handshake failed (wrong --server-key, or the publisher does not use CURVE)"
                                 if self._curve else "handshake failed (does the publisher need --server-key?)")
            elif event == zmq.EVENT_DISCONNECTED:
                if self.rejected is None or not self.rejected.startswith("the publisher rejected"):
                    self._reconnect_at = time.monotonic() + self._backoff_s
            elif event == zmq.EVENT_CONNECT_RETRIED:
                self._reconnect_at = None  # ZMQ is on it
        if self._reconnect_at is not None and time.monotonic() >= self._reconnect_at:
            self._reconnect_at = None
            self._backoff_s = min(self._backoff_s * 2, RECONNECT_MAX_S)
            try:
                self._socket.disconnect(self.endpoint)
            except zmq.ZMQError:
                pass  # already gone
            self._socket.connect(self.endpoint)
            self.reconnects += 1

    def _open_monitor(self, events: int) -> zmq.Socket:
        """The reader of this socket's connection events, on a queue without a limit.

        ZMQ's I/O thread hands each event to the monitor with a blocking send. With the default
        high-water marks (about 2,000 events) a monitor nobody reads for a while (a window whose
        event loop is not running, a peer that accepts and drops connections ten times a second)
        would block that thread, and with it every socket of the context: all the monitors of the
        process would go silent. An event is a few dozen bytes and ``poll`` drains them all.
        """
        address = f"inproc://fervid-receiver-events-{next(_MONITOR_IDS)}"
        self._socket.monitor(address, events)
        reader = self._socket.context.socket(zmq.PAIR)
        try:
            reader.setsockopt(zmq.LINGER, 0)
            reader.setsockopt(zmq.RCVHWM, 0)  # set before connecting: the inproc pipe takes it then
            reader.connect(address)
        except BaseException:
            reader.close(linger=0)
            self._socket.monitor(None, 0)
            raise
        return reader

    def close(self) -> None:
        """Close this socket only; other receivers sharing the context are unaffected."""
        self._finalizer()  # runs once; later calls do nothing


def _close_in_order(socket: zmq.Socket, reader: zmq.Socket | None) -> None:
    """Stop the monitor, close its reader, then the socket. The monitor must stop first: an event
    sent to a reader that is gone blocks ZMQ's I/O thread for good (zeromq/libzmq#3575), and with
    it every socket of the context. A subscriber's own close does not stop it at once: its
    connection is torn down later on that thread, and a publisher leaving meanwhile is an event."""
    if reader is not None:
        if not socket.closed:
            socket.monitor(None, 0)
        reader.close(linger=0)
    if not socket.closed:
        socket.close(linger=0)
