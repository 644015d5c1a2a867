"""``InOrder``: a stream's results leave in launch order, whatever order they finish in."""
from __future__ import annotations

import random
import threading

import pytest

from fervid.services.frame_order import InOrder


def test_results_wait_for_every_older_frame():
    order: InOrder[str] = InOrder()
    for key in (1, 2, 3, 4):
        order.launched(key)
    assert order.finish(3, "c") == []  # a region scan done before the full scan of frame 1
    assert order.waiting(3)
    assert order.finish(2, "b") == []
    assert order.finish(1, "a") == [(1, "a"), (2, "b"), (3, "c")]
    assert order.finish(4, "d") == [(4, "d")]
    assert len(order) == 0


def test_a_failed_or_given_up_frame_releases_its_place_without_a_result():
    order: InOrder[str] = InOrder()
    for key in (1, 2, 3):
        order.launched(key)
    assert order.finish(2, "b") == []
    assert order.finish(1, None) == [(2, "b")]  # frame 1 failed: frame 2 need not wait for it
    assert order.finish(3, None) == []
    assert len(order) == 0


def test_unknown_or_repeated_results_are_ignored_and_launches_must_increase():
    order: InOrder[str] = InOrder()
    order.launched(5)
    assert order.finish(4, "x") == []
    assert order.finish(5, "e") == [(5, "e")]
    assert order.finish(5, "e") == []  # already handed on
    with pytest.raises(ValueError):
        order.launched(5)


def test_any_completion_order_from_two_threads_comes_out_in_launch_order():
    """The reader launches while the completer finishes, as in the capture actor."""
    order: InOrder[int] = InOrder()
    out: list[int] = []
    launched: list[int] = []
    lock = threading.Lock()

    def reader() -> None:
        for key in range(1, 2001):
            order.launched(key)
            with lock:
                launched.append(key)

    thread = threading.Thread(target=reader)
    thread.start()
    rng = random.Random(0)
    finished = 0
    while finished < 2000:
        with lock:
            candidates = launched[:8]  # the oldest unfinished frames: up to 8 in flight
        if not candidates:
            continue
        key = rng.choice(candidates)
        with lock:
            launched.remove(key)
        finished += 1
        value = None if key % 97 == 0 else key
        out += [v for _, v in order.finish(key, value)]
    thread.join()
    assert out == [k for k in range(1, 2001) if k % 97]
