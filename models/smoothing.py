"""``ExpressionSmoother``: each track's expression averaged over its recent frames.

A single frame's probabilities flicker (a blink, motion blur, a half-turned head), and a label
that changes every frame is useless to a person watching. Each track keeps an exponential moving
average of its rows whose weight halves every ``half_life_s`` of the stream's own time, so the
smoothing means the same at 15 and at 30 frames/s and across dropped frames. ``half_life_s = 0``
turns smoothing off: the smoothed rows are then the raw ones.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class ExpressionSmoother:
    """Per-track moving averages of probability rows. One owner, frame order."""

    def __init__(self, half_life_s: float = 0.5):
        if half_life_s < 0:
            raise ValueError(f"half_life_s must be >= 0, got {half_life_s}")
        self.half_life_s = half_life_s
        self._state: dict[int, tuple[np.ndarray, float]] = {}

    def update(self, ts: float, track_ids: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """The smoothed row of each face (N x 7), after adding this frame's raw rows."""
        probabilities = np.asarray(probabilities, np.float32)
        smoothed = probabilities.copy()
        if self.half_life_s == 0:
            return smoothed
        for i, track_id in enumerate(np.asarray(track_ids, np.int64)):
            previous = self._state.get(int(track_id))
            if previous is not None:
                average, seen = previous
                keep = 0.5 ** (max(0.0, ts - seen) / self.half_life_s)
                smoothed[i] = keep * average + (1.0 - keep) * probabilities[i]
            self._state[int(track_id)] = (smoothed[i].copy(), ts)
        return smoothed

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the averages of tracks that ended."""
        for track_id in track_ids:
            self._state.pop(int(track_id), None)

    def __len__(self) -> int:
        return len(self._state)
