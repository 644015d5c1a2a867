"""StreamBook: a stream's slots, waiting frame, drops, stuck frames, fps and latencies, without Ray.

The capture actor's reader and completer threads share this state; the last test hammers it from
several threads at once, the way they do (a completer once died of ``deque mutated during
iteration`` computing fps while the reader appended, and the stream stopped while "up").
"""
from __future__ import annotations

import random
import sys
import threading
import time

import numpy as np
import pytest

from fervid.media.frame_source import CapturedFrame
from fervid.services.frame_slots import FPS_WINDOW_S, StreamBook


def frame(seq: int) -> CapturedFrame:
    return CapturedFrame(seq, time.time(), np.zeros((2, 2, 3), np.uint8))


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def book_with(max_in_flight=2, detectors=2, stuck_timeout_s=15.0, clock=None) -> StreamBook:
    return StreamBook(max_in_flight, detectors, stuck_timeout_s, clock=clock or Clock())


def launch_all(book: StreamBook, slots) -> list[int]:
    for slot in slots:
        book.launched(slot, f"refs of {slot.frame.seq}")
    return [slot.id for slot in slots]


def accounted(book: StreamBook) -> None:
    s = book.status()
    assert s.captured == s.processed + s.dropped + s.in_flight + s.waiting, s


def test_frames_are_admitted_up_to_the_limit_then_the_newest_waits():
    """Two slots: frames 1 and 2 go in; 3 waits; 4 replaces it (3 is a capture drop); a finished
    frame frees a slot for the waiting one, never for a frame already replaced."""
    book = book_with(max_in_flight=2)
    first = book.offer(frame(1))
    second = book.offer(frame(2))
    assert [s.frame.seq for s in first.slots + second.slots] == [1, 2] and first.dropped == second.dropped == 0
    ids = launch_all(book, first.slots + second.slots)
    assert book.offer(frame(3)).slots == []
    replaced = book.offer(frame(4))
    assert replaced.slots == [] and replaced.dropped == 1
    assert book.status().waiting == 1 and book.status().dropped_by_stage == {"capture": 1}
    assert book.take_waiting() is None  # still full
    assert book.processed(ids[0], faces=2, latency_s=0.05)
    slot = book.take_waiting()
    assert slot.frame.seq == 4 and book.take_waiting() is None
    status = book.status()
    assert (status.captured, status.processed, status.faces, status.in_flight, status.waiting) == (4, 1, 2, 2, 0)
    assert status.last_seq == 4
    accounted(book)


def test_room_appearing_while_a_frame_waits_submits_both_in_order():
    """When the limit grows while a frame waits, the next offer admits the waiting frame first and
    then the new one, so chains leave in capture order (the publisher drops anything older)."""
    book = book_with(max_in_flight=1)
    launch_all(book, book.offer(frame(1)).slots)
    assert book.offer(frame(2)).slots == []
    book.set_max_in_flight(3)
    offered = book.offer(frame(3))
    assert [s.frame.seq for s in offered.slots] == [2, 3] and offered.dropped == 0
    accounted(book)


def test_finishing_twice_or_after_a_give_up_counts_once():
    clock = Clock()
    book = book_with(max_in_flight=2, stuck_timeout_s=5.0, clock=clock)
    slot_id, other = launch_all(book, book.offer(frame(1)).slots + book.offer(frame(2)).slots)
    assert book.overdue() == {}
    clock.now += 5.1
    assert set(book.overdue()) == {slot_id, other}
    assert book.give_up(slot_id, "detect")
    assert not book.processed(slot_id, 1, 0.1)  # its result arrived after all: already counted
    assert not book.dropped(slot_id, "infer")
    assert book.dropped(other, "publish") and not book.give_up(other, "detect")
    status = book.status()
    assert status.dropped_by_stage == {"detect": 1, "publish": 1} and status.stuck_given_up == 1
    assert status.processed == 0 and status.in_flight == 0
    with pytest.raises(ValueError, match="stage"):
        book.dropped(slot_id, "nowhere")
    accounted(book)


def test_only_launched_frames_are_pending_or_overdue():
    """A slot reserved but not yet submitted has nothing to wait on: the completer must not see it."""
    clock = Clock()
    book = book_with(stuck_timeout_s=1.0, clock=clock)
    slot = book.offer(frame(1)).slots[0]
    clock.now += 2
    assert book.pending() == {} and book.overdue() == {} and book.in_flight == 1
    book.launched(slot, "refs")
    assert book.pending() == {slot.id: "refs"} and book.overdue() == {slot.id: "refs"}


def test_frames_spread_over_detectors():
    """Each frame goes to the detector holding the fewest of the stream's frames."""
    book = book_with(max_in_flight=4, detectors=2)
    slots = [book.offer(frame(seq)).slots[0] for seq in range(1, 5)]
    assert sorted(s.detector for s in slots) == [0, 0, 1, 1]
    book.processed(slots[0].id, 0, 0.1)
    refill = book.offer(frame(5)).slots[0]
    assert refill.detector == slots[0].detector


def test_fps_counts_frames_read_in_the_window():
    clock = Clock()
    book = book_with(clock=clock)
    assert book.fps() == 0.0
    for _ in range(11):  # 10 intervals of 0.1 s
        book.offer(frame(1))
        clock.now += 0.1
    clock.now -= 0.1
    assert book.fps() == pytest.approx(10.0)
    clock.now += FPS_WINDOW_S + 1
    assert book.fps() == 0.0


def test_latency_percentiles_are_numpys():
    book = book_with(max_in_flight=100)
    latencies = [0.010 * k for k in range(1, 41)]
    for seq, latency in enumerate(latencies, 1):
        slot = book.offer(frame(seq)).slots[0]
        book.processed(slot.id, 0, latency)
    status = book.status()
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    assert status.latency_ms_p50 == round(p50, 1) and status.latency_ms_p95 == round(p95, 1)
    assert book_with().status().latency_ms_p50 is None


def test_close_drops_the_waiting_frame_and_admits_nothing():
    book = book_with(max_in_flight=1)
    launch_all(book, book.offer(frame(1)).slots)
    book.offer(frame(2))
    assert book.close() == 1
    late = book.offer(frame(3))
    assert late.slots == [] and late.dropped == 1
    assert book.take_waiting() is None
    assert book.status().dropped_by_stage == {"capture": 2}
    accounted(book)


def test_wait_for_room_returns_when_a_slot_frees_or_on_stop():
    book = book_with(max_in_flight=1)
    (slot_id,) = launch_all(book, book.offer(frame(1)).slots)
    stop = threading.Event()
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (book.wait_for_room(stop), returned.set()))
    waiter.start()
    assert not returned.wait(0.3)
    book.processed(slot_id, 0, 0.1)
    assert returned.wait(5)
    launch_all(book, book.offer(frame(2)).slots)
    returned.clear()
    waiter = threading.Thread(target=lambda: (book.wait_for_room(stop), returned.set()))
    waiter.start()
    assert not returned.wait(0.2)
    stop.set()
    assert returned.wait(5)


def test_reader_and_completer_threads_hammering_the_book():
    """A reader offering frames, a completer finishing, dropping, giving up and refilling, a
    status poller and a rebalancer, all at once for a bounded number of frames, with thread
    switches forced as often as the interpreter allows: no thread may raise, and every status
    taken on the way must account for every frame read."""
    frames = 20_000
    book = StreamBook(3, 2, stuck_timeout_s=0.002)
    errors: list[BaseException] = []
    reader_done = threading.Event()
    stop = threading.Event()
    polls = []

    def guarded(target):
        def run():
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever killed a thread
                errors.append(exc)
                stop.set()
        return run

    def reader():
        for seq in range(1, frames + 1):
            if stop.is_set():
                return
            for slot in book.offer(frame(seq)).slots:
                book.launched(slot, slot.frame.seq)
        reader_done.set()

    def completer():
        rng = random.Random(1)
        while not stop.is_set():
            for slot_id in book.pending():
                roll = rng.random()
                if roll < 0.7:
                    book.processed(slot_id, rng.randint(0, 3), rng.random() / 10)
                elif roll < 0.9:
                    book.dropped(slot_id, rng.choice(("detect", "infer", "publish")))
            for slot_id in book.overdue():
                book.give_up(slot_id, "detect")
            slot = book.take_waiting()
            if slot is not None:
                book.launched(slot, slot.frame.seq)
            book.fps()
            if reader_done.is_set() and book.in_flight == 0:
                return

    def poller():
        while not stop.is_set():
            status = book.status()
            polls.append(status)
            assert status.captured == status.processed + status.dropped + status.in_flight + status.waiting, status
            assert status.in_flight <= 4 and status.waiting <= 1, status
            book.fps()

    def rebalancer():
        rng = random.Random(2)
        while not stop.is_set():
            book.set_max_in_flight(rng.randint(1, 4))
            book.set_detectors(rng.randint(1, 3))
            time.sleep(0.001)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=guarded(f), daemon=True) for f in (reader, completer, poller, rebalancer)]
        for worker in workers:
            worker.start()
        workers[1].join(timeout=120)  # the completer ends once every frame read is finished
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    finally:
        sys.setswitchinterval(switch)
    assert not errors, repr(errors[0])
    assert reader_done.is_set() and not workers[1].is_alive(), "the completer did not finish every frame"
    assert len(polls) > 10
    book.close()
    final = book.status()
    assert final.captured == frames
    assert final.processed + final.dropped == frames and final.in_flight == final.waiting == 0, final
    assert final.processed > 0 and final.dropped_by_stage.get("capture", 0) > 0
