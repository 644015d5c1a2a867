"""``RayAnalysisPool``: ``fervid analyze``'s segments on Ray actors, on this machine or a cluster.

Each worker is one actor holding one recogniser (TensorFlow and the cascade load once per actor,
not per segment) on one CPU, with OpenCV on one thread so that actors, not OpenCV's threads, share
the cores. A segment is a small value (its video's path, frame range and options); every actor
opens the video itself, so only rows of faces travel back, never frames. On a cluster the videos
must lie at the same path on every node (a shared file system).

Progress: an actor runs its segments one at a time in its default thread, and answers ``progress``
on a second one, so the pool can show frames as they are analysed rather than a segment at a time.
"""
from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import ray

from fervid.analysis.segment_worker import SegmentResult, analyse_segment
from fervid.analysis.segments import Segment
from fervid.errors import ModelLoadError, VideoError
from fervid.models.face_detector import DetectorParams, HaarFaceDetector
from fervid.models.recognizer import Recognizer
from fervid.services.service import connect

IN_FLIGHT_PER_WORKER = 2
"""Segments queued on an actor: the one it runs and the next, so it never waits for the driver
between two, while memory stays bounded whatever the number of segments."""
PROGRESS_POLL_S = 0.5
"""How often the pool asks the busy actors for their frame counts while it waits for results."""


@ray.remote(num_cpus=1, concurrency_groups={"progress": 1})
class SegmentActor:
    """One worker: analyses segments one at a time; counts their frames for ``progress``."""

    def __init__(self, model: str | None):
        import cv2

        from fervid.services.inference import limit_accelerator_memory

        limit_accelerator_memory()  # configures TensorFlow before it loads
        cv2.setNumThreads(1)
        self._recognizer = Recognizer.load(model)
        self._detectors: dict[DetectorParams, HaarFaceDetector] = {}
        self._lock = threading.Lock()
        self._frames: dict[int, int] = {}

    def analyse(self, ticket: int, segment: Segment) -> SegmentResult | VideoError:
        """The segment's result, or the ``VideoError`` that ended it (returned, not raised: a bad
        video is an answer, not a failure of the actor)."""
        params = segment.options.detector
        detector = self._detectors.setdefault(params, HaarFaceDetector(params))
        recognizer = Recognizer(self._recognizer.classifier, detector)
        try:
            return analyse_segment(recognizer, segment, lambda n: self._count(ticket, n))
        except VideoError as exc:
            return exc

    def _count(self, ticket: int, n: int) -> None:
        with self._lock:
            self._frames[ticket] = self._frames.get(ticket, 0) + n

    @ray.method(concurrency_group="progress")
    def progress(self) -> dict[int, int]:
        """Frames analysed per segment ticket since the last call."""
        with self._lock:
            frames, self._frames = self._frames, {}
        return frames

    @ray.method(concurrency_group="progress")
    def ready(self) -> bool:
        return True


class RayAnalysisPool:
    """``workers`` actors on the Ray cluster at ``address`` (``None``: an embedded Ray on 127.0.0.1,
    as ``fervid up`` starts one). ``close()`` (or ``with``) kills them, and shuts Ray down if this
    pool started it."""

    def __init__(self, workers: int | None, model: Path | None = None, address: str | None = None):
        """``workers=None``: one per CPU the cluster has (every node's cores)."""
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        local_cpus = max(workers or 1, os.cpu_count() or 1)
        self._started_ray = connect(address, num_cpus=local_cpus if address is None else None)
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actors = [SegmentActor.remote(None if model is None else str(model)) for _ in range(self.workers)]
        self._tickets = itertools.count()
        try:
            ray.get([actor.ready.remote() for actor in self._actors])
        except ray.exceptions.RayActorError as exc:
            self.close()
            reason = str(exc.__cause__ or exc).strip().splitlines()[-1][:300]
            raise ModelLoadError(f"the analysis workers could not start: {reason}") from None

    def run(self, segments: Iterable[Segment], on_frames: Callable[[Segment, int], None] | None = None
            ) -> Iterator[tuple[Segment, SegmentResult | VideoError]]:
        """Each segment (the object given) with its result or ``VideoError``, in completion order.
        ``segments`` is read lazily: a segment is taken only when an actor has room for it, at most
        ``IN_FLIGHT_PER_WORKER`` per actor, each to the least loaded actor."""
        source = iter(segments)
        in_flight: dict[ray.ObjectRef, tuple[int, Segment, int]] = {}
        load = [0] * self.workers
        while True:
            while len(in_flight) < IN_FLIGHT_PER_WORKER * self.workers:
                segment = next(source, None)
                if segment is None:
                    break
                worker = load.index(min(load))
                ticket = next(self._tickets)
                in_flight[self._actors[worker].analyse.remote(ticket, segment)] = (ticket, segment, worker)
                load[worker] += 1
            if not in_flight:
                return
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=PROGRESS_POLL_S)
            if on_frames is not None:
                self._report_progress(in_flight, load, on_frames)
            for ref in done:
                _, segment, worker = in_flight.pop(ref)
                load[worker] -= 1
                yield segment, ray.get(ref)

    def _report_progress(self, in_flight: dict, load: list[int],
                         on_frames: Callable[[Segment, int], None]) -> None:
        """Hand on the busy actors' counts (a finished segment's last count is in: its actor counted
        it before it returned)."""
        by_ticket = {ticket: segment for ticket, segment, _ in in_flight.values()}
        busy = [actor for actor, n in zip(self._actors, load) if n]
        for counts in ray.get([actor.progress.remote() for actor in busy]):
            for ticket, n in counts.items():
                on_frames(by_ticket[ticket], n)

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> "RayAnalysisPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
