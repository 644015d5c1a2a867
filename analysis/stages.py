"""Two helpers that let a segment's stages overlap: ``FrameReader`` and ``BackgroundCalls``.

A segment is read, scanned and classified in frame order, and in one thread each stage waits for
the others: the decoder while Haar scans, Haar while TensorFlow classifies a batch. OpenCV's
decoder, its cascade and TensorFlow all release the GIL, so threads let the stages run at once,
which is what a second core is for while a region scan keeps one busy. Both helpers hold at most a
few items (frames ahead, batches behind), so memory stays bounded whatever the video's length, and
both end their thread when the ``with`` block ends, by error or interruption too.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import cv2
import numpy as np

READ_AHEAD = 8
"""Frames decoded ahead of the scan at most (8 frames of 1080p are 50 MB)."""
BATCHES_AHEAD = 2
"""Batches submitted and not yet classified at most; one more blocks ``submit``."""

_END = object()

T = TypeVar("T")
R = TypeVar("R")


class FrameReader:
    """Frames ``start`` to ``stop - 1`` of an open capture, decoded on a thread of their own.

    Iterating gives ``(index, image)`` for every index that is a multiple of ``every`` (the others
    are grabbed, not decoded); ``image`` is ``None`` where the video ended early, and nothing
    follows it. The capture is released when the ``with`` block ends."""

    def __init__(self, cap: cv2.VideoCapture, start: int, stop: int, every: int = 1,
                 read_ahead: int = READ_AHEAD):
        self._cap = cap
        self._range = (start, stop, every)
        self._queue: queue.Queue = queue.Queue(maxsize=read_ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="fervid-frame-reader", daemon=True)

    def __enter__(self) -> "FrameReader":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # a reader blocked on a full queue needs room to see the flag
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._cap.release()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if item[1] is None:
                return

    def _put(self, item: object) -> bool:
        """Hand ``item`` on, waiting for room; ``False`` once the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        start, stop, every = self._range
        try:
            for index in range(start, stop):
                if index % every:
                    if not self._cap.grab():
                        self._put((index, None))
                        return
                    continue
                ok, image = self._cap.read()
                if not self._put((index, image if ok else None)) or not ok:
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(exc)


class BackgroundCalls(Generic[T, R]):
    """``function`` called on each submitted item in order on one background thread; ``results``
    gives the returns in submission order. At most ``ahead`` calls wait or run at once: ``submit``
    blocks until the oldest is done, so a slow stage holds back the fast one instead of queueing
    without end. An error in a call is raised by ``submit`` or ``results``."""

    def __init__(self, function: Callable[[T], R], ahead: int = BATCHES_AHEAD):
        if ahead < 1:
            raise ValueError(f"ahead must be >= 1, got {ahead}")
        self._function = function
        self._ahead = ahead
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fervid-classify")
        self._running: deque[Future] = deque()
        self._done: list[R] = []

    def __enter__(self) -> "BackgroundCalls[T, R]":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for future in self._running:
            future.cancel()
        self._executor.shutdown(wait=True)

    def submit(self, item: T) -> None:
        while len(self._running) >= self._ahead:
            self._done.append(self._running.popleft().result())
        self._running.append(self._executor.submit(self._function, item))

    def results(self) -> list[R]:
        """Every call's return, in the order submitted (waits for the calls still running)."""
        while self._running:
            self._done.append(self._running.popleft().result())
        return self._done
