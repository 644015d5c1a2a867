"""Which streams are watched, from a real XPUB socket's subscription messages
(``fervid.comms.publisher_socket``: the publishing end without Ray)."""
from __future__ import annotations

import time

import pytest
import zmq

from fervid.comms.publisher_socket import SubscriptionTracker


def tracker_fed(*messages: bytes) -> SubscriptionTracker:
    tracker = SubscriptionTracker()
    for message in messages:
        tracker.feed(message)
    return tracker


def test_nobody_subscribed_means_nothing_is_watched():
    assert not SubscriptionTracker().is_watched("cam1")


def test_empty_subscription_watches_every_stream():
    """A monitor showing all streams subscribes to b'' (ZMQ's match-everything prefix)."""
    tracker = tracker_fed(b"\x01")
    assert tracker.is_watched("cam1") and tracker.is_watched("lobby")


def test_subscriptions_match_by_prefix_like_zmq():
    """'cam' receives cam1 and cam2 from ZMQ, so both count as watched; 'lobby' does not."""
    tracker = tracker_fed(b"\x01cam")
    assert tracker.is_watched("cam1") and tracker.is_watched("cam2") and tracker.is_watched("cam")
    assert not tracker.is_watched("lobby") and not tracker.is_watched("ca")


def test_unsubscribe_removes_and_subscriptions_are_counted():
    """Two subscriptions to one topic need two unsubscriptions before the stream is unwatched."""
    tracker = tracker_fed(b"\x01cam1", b"\x01cam1", b"\x00cam1")
    assert tracker.is_watched("cam1")
    tracker.feed(b"\x00cam1")
    assert not tracker.is_watched("cam1")
    tracker.feed(b"\x00cam1")  # one more unsubscribe than subscribes: ignored, no negative count
    tracker.feed(b"\x01cam1")
    assert tracker.is_watched("cam1")


@pytest.mark.parametrize("noise", [b"", b"\x02cam1", b"cam1", b"\x00never-subscribed"])
def test_other_messages_are_ignored(noise):
    """Only subscribe (0x01) and unsubscribe (0x00) messages change anything."""
    tracker = tracker_fed(noise)
    assert not tracker.is_watched("cam1")
    tracker = tracker_fed(b"\x01cam1", noise)
    assert tracker.is_watched("cam1")


@pytest.fixture
def xpub():
    """A real XPUB socket on 127.0.0.1 (random port), like the publisher's, and a SUB factory."""
    context = zmq.Context()
    socket = context.socket(zmq.XPUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind("tcp://127.0.0.1:*")
    endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
    subs = []

    def subscriber(*topics: bytes):
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(endpoint)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        subs.append(sub)
        return sub

    yield socket, subscriber
    for sub in subs:
        sub.close(linger=0)
    socket.close(linger=0)
    context.term()


def pump(socket, tracker: SubscriptionTracker, until, timeout: float = 10.0) -> list[bytes]:
    """Feed what the XPUB socket reports into the tracker until ``until()`` holds; returns the bytes."""
    seen = []
    deadline = time.monotonic() + timeout
    while not until():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"condition not reached; XPUB reported {seen}")
        if socket.poll(int(min(remaining, 0.1) * 1000)):
            message = socket.recv()
            seen.append(message)
            tracker.feed(message)
    return seen


def test_tracker_follows_real_subscribers_coming_and_going(xpub):
    """Real SUB sockets subscribe and close; the XPUB reports it and the tracker follows:
    a stream stays watched while any subscriber for it remains."""
    socket, subscriber = xpub
    tracker = SubscriptionTracker()
    first = subscriber(b"cam")
    seen = pump(socket, tracker, lambda: tracker.is_watched("cam1"))
    assert seen == [b"\x01cam"]
    assert tracker.is_watched("cam2") and not tracker.is_watched("lobby")

    second = subscriber(b"cam", b"lobby")
    pump(socket, tracker, lambda: tracker.is_watched("lobby"))
    first.close(linger=0)  # one of two 'cam' subscribers leaves
    time.sleep(0.3)
    while socket.poll(200):  # whatever the XPUB reports about it (nothing: 'cam' is still held)
        tracker.feed(socket.recv())
    assert tracker.is_watched("cam1")

    second.setsockopt(zmq.UNSUBSCRIBE, b"lobby")
    pump(socket, tracker, lambda: not tracker.is_watched("lobby"))
    assert tracker.is_watched("cam1")
    second.close(linger=0)  # the last subscriber disconnects without unsubscribing
    seen = pump(socket, tracker, lambda: not tracker.is_watched("cam1"))
    assert b"\x00cam" in seen


def test_tracker_with_a_watch_everything_subscriber(xpub):
    """A monitor subscribed to b'' makes every stream watched until it disconnects."""
    socket, subscriber = xpub
    tracker = SubscriptionTracker()
    everything = subscriber(b"")
    pump(socket, tracker, lambda: tracker.is_watched("any-stream"))
    everything.close(linger=0)
    pump(socket, tracker, lambda: not tracker.is_watched("any-stream"))
