"""``InProcessPool``: segments analysed one after another in the calling thread.

For ``--workers 1``, the desktop app and tests: no Ray, no second process, the recogniser the
caller already loaded. It answers the same ``run`` as the Ray pool
(:class:`fervid.services.analysis_pool.RayAnalysisPool`), so the driver does not know which it has.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from fervid.analysis.segment_worker import SegmentResult, analyse_segment
from fervid.analysis.segments import Segment
from fervid.errors import VideoError
from fervid.models.recognizer import Recognizer


class InProcessPool:
    """Runs each segment to its end before taking the next (one in flight)."""

    def __init__(self, recognizer: Recognizer, workers: int = 1):
        if workers != 1:
            raise ValueError(f"an in-process pool has one worker, not {workers} (use the Ray pool for more)")
        self.recognizer = recognizer
        self.workers = workers

    def run(self, segments: Iterable[Segment], on_frames: Callable[[Segment, int], None] | None = None
            ) -> Iterator[tuple[Segment, SegmentResult | VideoError]]:
        """Each segment (the object given) with its result, or the ``VideoError`` that ended it.
        ``segments`` is read lazily, one at a time, so the caller can stop feeding a failed video."""
        for segment in segments:
            progress = (lambda n, s=segment: on_frames(s, n)) if on_frames is not None else None
            try:
                result = analyse_segment(self.recognizer, segment, progress)
            except VideoError as exc:
                yield segment, exc
                continue
            yield segment, result

    def close(self) -> None:
        """Nothing to release (the recogniser is the caller's); the Ray pool's ``close`` ends its workers."""
