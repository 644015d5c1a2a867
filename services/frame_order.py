"""``InOrder``: hand a stream's results on in the order its frames were launched.

A stream's frames finish out of order: a full scan takes ten times a region scan, and two
detectors serve one stream side by side. The face tracker must see the frames in order (a track
cannot move backwards in time), and the publisher sends a stream's frames in order anyway (it
drops one older than a frame already sent), so results wait here until every frame launched
before them has finished or been given up. A frame given up or failed releases its place with
``None``, so one lost result holds the rest back at most until the stuck timeout.
Launches come from the reader thread and results from the completer, hence the lock.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

_WAITING = object()


class InOrder(Generic[V]):
    """Results keyed by launch number; ``finish`` returns the ones now due, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: OrderedDict[int, object] = OrderedDict()
        self._last_launched: int | None = None

    def launched(self, key: int) -> None:
        """A frame was launched; keys must increase with launch order."""
        with self._lock:
            if self._last_launched is not None and key <= self._last_launched:
                raise ValueError(f"launch {key} is not after {self._last_launched}")
            self._last_launched = key
            self._slots[key] = _WAITING

    def finish(self, key: int, value: V | None) -> list[tuple[int, V]]:
        """Record a frame's result (``None``: it failed or was given up) and return the results
        now in order: every finished frame with no unfinished frame launched before it."""
        with self._lock:
            if key not in self._slots:
                return []
            self._slots[key] = value
            due = []
            while self._slots:
                first, result = next(iter(self._slots.items()))
                if result is _WAITING:
                    break
                del self._slots[first]
                if result is not None:
                    due.append((first, result))
            return due

    def waiting(self, key: int) -> bool:
        """Whether ``key`` finished but waits for an older frame."""
        with self._lock:
            return self._slots.get(key, _WAITING) is not _WAITING

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)
