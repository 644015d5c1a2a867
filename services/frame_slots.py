"""``StreamBook``: one stream's frames between capture and publish, and everything counted about them.

A capture actor runs two threads over the same state: the reader offers every frame it reads,
and the completer finishes frames, gives up stuck ones and moves the waiting frame into a freed
slot; ``status`` reads it all from a third. When that state was loose attributes, the completer
once died iterating the fps deque while the reader appended to it, and with it went the only
thread that frees slots: the stream stopped while reporting "up". So every piece of it lives here,
behind one lock, and nothing here knows Ray (tests hammer it with plain threads, like
``DynamicBatcher``).

Accounting, true whenever the lock is free::

    captured == processed + sum(dropped.values()) + in_flight + waiting

A frame is *in flight* from the moment it is admitted (its slot is reserved before the actor
submits its chain) until it is finished or given up; at most one frame *waits* (the newest wins).
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from fervid.media.frame_source import CapturedFrame

FPS_WINDOW_S = 2.0
LATENCY_WINDOW = 300
"""Latencies kept for the status percentiles: the last few seconds of a stream."""
STAGES = ("capture", "detect", "infer", "publish")

T = TypeVar("T")
"""What the owner keeps for a launched frame (the capture actor: its Ray refs)."""


@dataclass(frozen=True)
class Slot:
    """A frame admitted to the pipeline: the owner submits it to ``detector`` and then calls
    :meth:`StreamBook.launched` with what it needs to finish it."""

    id: int
    frame: CapturedFrame
    detector: int


@dataclass(frozen=True)
class Offered:
    """What :meth:`StreamBook.offer` decided about a frame just read."""

    slots: list[Slot]
    """Frames to submit now, oldest first: none (the frame waits), the frame itself, or, when a
    slot freed up while a frame waited, the waiting frame and then this one."""
    dropped: int
    """Frames this call counted as dropped at ``capture`` (0 or 1): the waiting frame replaced."""


@dataclass
class _Entry(Generic[T]):
    detector: int
    admitted: float
    ticket: T | None = None


@dataclass(frozen=True)
class BookStatus:
    """A consistent copy of the counts (taken under the lock)."""

    captured: int
    processed: int
    dropped_by_stage: dict[str, int]
    faces: int
    in_flight: int
    waiting: int
    max_in_flight: int
    stuck_given_up: int
    last_seq: int
    fps: float
    latency_ms_p50: float | None
    latency_ms_p95: float | None

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_stage.values())


@dataclass
class _Counts:
    captured: int = 0
    processed: int = 0
    faces: int = 0
    stuck: int = 0
    dropped: Counter = field(default_factory=Counter)


class StreamBook(Generic[T]):
    """Slots, the single waiting slot, drops by stage, stuck give-ups, fps and latencies of one stream.

    Live sources call :meth:`offer` for every frame and never wait; unpaced files call
    :meth:`wait_for_room` before reading. The completer calls :meth:`processed` or :meth:`dropped`
    for each finished frame, :meth:`overdue` to find stuck ones, and :meth:`take_waiting` to fill a
    freed slot. Every method is safe from any thread.
    """

    def __init__(self, max_in_flight: int, detectors: int, stuck_timeout_s: float, *, first_seq: int = 0,
                 rotation: int = 0, clock: Callable[[], float] = time.monotonic):
        self._cond = threading.Condition()
        self._clock = clock
        self._max_in_flight = max(1, int(max_in_flight))
        self._detectors = max(1, int(detectors))
        self._stuck_timeout_s = stuck_timeout_s
        self._rotation = rotation
        self._ids = itertools.count(1)
        self._entries: dict[int, _Entry[T]] = {}
        self._waiting: CapturedFrame | None = None
        self._closed = False
        self._last_seq = first_seq
        self._counts = _Counts()
        self._capture_times: deque[float] = deque(maxlen=512)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)

    # -- the reader's side --------------------------------------------------------------------
    def offer(self, frame: CapturedFrame) -> Offered:
        """Count a frame just read and admit it, or hold it in the waiting slot (newest wins).

        After :meth:`close` the frame is counted as dropped at ``capture``.
        """
        with self._cond:
            self._counts.captured += 1
            self._capture_times.append(self._clock())
            if self._closed:
                self._counts.dropped["capture"] += 1
                return Offered([], 1)
            older, self._waiting = self._waiting, None
            slots, dropped = [], 0
            if older is not None:
                if self._has_room():
                    slots.append(self._admit(older))
                else:
                    dropped = 1  # the newest frame wins the single slot
                    self._counts.dropped["capture"] += 1
            if self._has_room():
                slots.append(self._admit(frame))
            else:
                self._waiting = frame
            return Offered(slots, dropped)

    def wait_for_room(self, stop: threading.Event, poll_s: float = 0.1) -> None:
        """Block until a frame could be admitted (or ``stop`` is set): unpaced files read only
        then, so their ``ts_capture`` never includes time spent queueing."""
        with self._cond:
            while not self._has_room() and not stop.is_set() and not self._closed:
                self._cond.wait(poll_s)

    # -- the completer's side -----------------------------------------------------------------
    def launched(self, slot: Slot, ticket: T) -> None:
        """The slot's chain was submitted; ``ticket`` is what finishing it takes."""
        with self._cond:
            entry = self._entries.get(slot.id)
            if entry is not None:
                entry.ticket = ticket
                self._cond.notify_all()

    def pending(self) -> dict[int, T]:
        """Launched frames still in flight, by slot id."""
        with self._cond:
            return {slot_id: e.ticket for slot_id, e in self._entries.items() if e.ticket is not None}

    def wait_for_pending(self, timeout_s: float) -> None:
        """Sleep until a frame is launched (or ``timeout_s``): the completer's idle wait."""
        with self._cond:
            if not any(e.ticket is not None for e in self._entries.values()):
                self._cond.wait(timeout_s)

    def processed(self, slot_id: int, faces: int, latency_s: float) -> bool:
        """A frame went all the way through. False (and nothing counted) when it was no longer
        in flight, having been given up as stuck."""
        with self._cond:
            if self._entries.pop(slot_id, None) is None:
                return False
            self._counts.processed += 1
            self._counts.faces += faces
            self._latencies.append(latency_s)
            self._cond.notify_all()
            return True

    def dropped(self, slot_id: int, stage: str) -> bool:
        """A frame failed at ``stage``. False when it was no longer in flight."""
        return self._drop(slot_id, stage, stuck=False)

    def _drop(self, slot_id: int, stage: str, stuck: bool) -> bool:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        with self._cond:
            if self._entries.pop(slot_id, None) is None:
                return False
            self._counts.dropped[stage] += 1
            self._counts.stuck += int(stuck)
            self._cond.notify_all()
            return True

    def overdue(self) -> dict[int, T]:
        """Launched frames in flight for longer than ``stuck_timeout_s``, by slot id."""
        now = self._clock()
        with self._cond:
            return {slot_id: e.ticket for slot_id, e in self._entries.items()
                    if e.ticket is not None and now - e.admitted > self._stuck_timeout_s}

    def give_up(self, slot_id: int, stage: str) -> bool:
        """Forget a stuck frame, counting it as dropped at ``stage`` (the first that had not finished)."""
        return self._drop(slot_id, stage, stuck=True)

    def take_waiting(self) -> Slot | None:
        """Admit the waiting frame if a slot is free (``None`` otherwise, or when nothing waits)."""
        with self._cond:
            if self._waiting is None or self._closed or not self._has_room():
                return None
            frame, self._waiting = self._waiting, None
            return self._admit(frame)

    # -- settings and reporting ---------------------------------------------------------------
    def set_max_in_flight(self, limit: int) -> None:
        with self._cond:
            self._max_in_flight = max(1, int(limit))
            self._cond.notify_all()

    def set_detectors(self, count: int) -> None:
        with self._cond:
            self._detectors = max(1, int(count))

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._entries)

    def fps(self) -> float:
        """Frames per second read over the last ``FPS_WINDOW_S`` (from a copy taken under the lock)."""
        with self._cond:
            times = list(self._capture_times)
        return _rate(times, self._clock())

    def status(self) -> BookStatus:
        with self._cond:
            counts = self._counts
            latencies = np.asarray(self._latencies, dtype=np.float64)
            times = list(self._capture_times)
            snapshot = dict(captured=counts.captured, processed=counts.processed,
                            dropped_by_stage=dict(counts.dropped), faces=counts.faces,
                            in_flight=len(self._entries), waiting=int(self._waiting is not None),
                            max_in_flight=self._max_in_flight, stuck_given_up=counts.stuck,
                            last_seq=self._last_seq)
        p50, p95 = (np.percentile(latencies, [50, 95]) * 1000).round(1).tolist() if latencies.size else (None, None)
        return BookStatus(**snapshot, fps=round(_rate(times, self._clock()), 2),
                          latency_ms_p50=p50, latency_ms_p95=p95)

    def close(self) -> int:
        """Admit nothing more; a frame still waiting is counted as dropped at ``capture``.
        Returns how many frames that dropped (0 or 1)."""
        with self._cond:
            self._closed = True
            dropped, self._waiting = int(self._waiting is not None), None
            if dropped:
                self._counts.dropped["capture"] += 1
            self._cond.notify_all()
            return dropped

    # -- under the lock -----------------------------------------------------------------------
    def _has_room(self) -> bool:
        return len(self._entries) < self._max_in_flight

    def _admit(self, frame: CapturedFrame) -> Slot:
        detector = self._pick_detector()
        slot = Slot(next(self._ids), frame, detector)
        self._entries[slot.id] = _Entry(detector, self._clock())
        self._last_seq = max(self._last_seq, frame.seq)
        return slot

    def _pick_detector(self) -> int:
        """The detector with the fewest of this stream's frames, rotating among equals."""
        busy = Counter(entry.detector for entry in self._entries.values())
        n = self._detectors
        self._rotation += 1
        return min(((self._rotation + k) % n for k in range(n)), key=lambda index: busy[index])


def _rate(times: list[float], now: float) -> float:
    recent = [t for t in times if now - t <= FPS_WINDOW_S]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
