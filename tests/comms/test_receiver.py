"""StreamReceiver against a real XPUB socket on loopback, publishing real encoded messages
(the publishing end and the messages are in zmq_helpers.py)."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import zmq

from fervid.comms.receiver import StreamReceiver
from fervid.comms.messages import StreamMessage, encode_message
from tests.helpers.zmq_helpers import WAIT_S, FakeService, face, frame_jpeg, make_message


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


class AcceptAndDrop(threading.Thread):
    """A TCP listener that is not ZMQ: it accepts every connection and closes it at once, so a
    SUB connected to it disconnects and reconnects over and over (one monitor event each time)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.settimeout(0.1)
        self.endpoint = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            connection.close()
            self.accepted += 1

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.listener.close()


def test_a_receiver_nobody_polls_does_not_silence_the_others(service, receivers):
    """ZMQ's I/O thread hands connection events to a monitor with a blocking send. Behind the
    default high-water marks, about 2,000 unread events blocked that thread, and every receiver
    of the process (they share one context) went silent for good: no subscription left, nothing
    arrived. The events of a receiver nobody polls (a window whose event loop is not running)
    now wait on an unbounded queue. The test reconnects every millisecond instead of every 100 ms
    so that the old limit is passed in seconds."""
    peer = AcceptAndDrop()
    peer.start()
    try:
        idle = receivers("cam1", peer.endpoint)
        idle._socket.setsockopt(zmq.RECONNECT_IVL, 1)
        idle._socket.disconnect(peer.endpoint)
        idle._socket.connect(peer.endpoint)
        deadline = time.monotonic() + 4 * WAIT_S
        while peer.accepted < 3_000:  # each connection dropped is at least one DISCONNECTED event
            assert time.monotonic() < deadline, f"ZMQ's I/O thread stopped after {peer.accepted} connections"
            time.sleep(0.05)

        other = receivers("cam1", service.endpoint)
        assert other._socket.context is idle._socket.context
        service.wait_for_subscribers(pump=other.poll, cam1=1)
        service.send(make_message(seq=4))
        assert poll_until(other, lambda got: got)[-1].seq == 4
    finally:
        peer.close()
    waiting = 0
    while idle._events.poll(0):
        idle._events.recv_multipart()
        waiting += 1
    assert waiting > 2_100, waiting  # more than the old limit waited, unread, meanwhile


def test_receivers_dropped_without_close_leave_the_others_working():
    """A receiver freed without ``close()`` (a monitor window collected before it was closed)
    used to close its event reader before its socket, whose connection ZMQ tears down later on
    its I/O thread; the publisher leaving meanwhile was an event sent to a reader that was gone,
    which blocked that thread for good (zeromq/libzmq#3575) and so every receiver of the process.
    The old receiver failed this in 3 of 3 runs (outside pytest its context was dead after 6 drops)."""
    for drop in range(50):
        publisher = FakeService()
        try:
            dropped = StreamReceiver("cam1", publisher.endpoint)
            publisher.wait_for_subscribers(pump=dropped.poll, cam1=1)
            del dropped  # freed here, without close()
        finally:
            publisher.close()  # the peer leaves while the dropped socket is being torn down
    publisher = FakeService()
    fresh = StreamReceiver("cam1", publisher.endpoint)
    try:
        publisher.wait_for_subscribers(pump=fresh.poll, cam1=1)
        publisher.send(make_message(seq=2))
        assert poll_until(fresh, lambda got: got)[-1].seq == 2
    finally:
        fresh.close()
        publisher.close()


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError):
        StreamReceiver("", "tcp://127.0.0.1:5556")  # '' would subscribe to every stream
    with pytest.raises(zmq.ZMQError):
        StreamReceiver("cam1", "not an endpoint")
