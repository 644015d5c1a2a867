"""``FaceRows``: every face of many analysed frames of one video, as columns.

One row per face per analysed frame, as ``faces.csv`` stores it: the frame's index and time, the
face's track, its box, the classifier's raw probabilities and the track's smoothed ones. Segments
produce them, joining renumbers their tracks, the CSV writer stores them and the summary, the
timeline and the annotated video read them back: one shape on every path, like ``Faces`` for a frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS, NUM_CLASSES


@dataclass(frozen=True, eq=False)
class FaceRows:
    """N rows: ``frame`` (int64, the frame's 0-based index in the video), ``time_s`` (float64,
    index / fps), ``track`` (int64), ``boxes`` (N x 4 int32, x y w h), ``probabilities`` and
    ``smoothed`` (N x 7 float32, ``EMOTIONS`` order)."""

    frame: np.ndarray
    time_s: np.ndarray
    track: np.ndarray
    boxes: np.ndarray
    probabilities: np.ndarray
    smoothed: np.ndarray

    def __post_init__(self) -> None:
        n = len(np.asarray(self.frame).reshape(-1))
        columns = {"frame": (np.int64, (n,)), "time_s": (np.float64, (n,)), "track": (np.int64, (n,)),
                   "boxes": (np.int32, (n, 4)), "probabilities": (np.float32, (n, NUM_CLASSES)),
                   "smoothed": (np.float32, (n, NUM_CLASSES))}
        for name, (dtype, shape) in columns.items():
            value = np.asarray(getattr(self, name), dtype=dtype)
            if value.size != int(np.prod(shape)):
                raise ValueError(f"{name}: {value.size} values for {n} rows")
            object.__setattr__(self, name, value.reshape(shape))

    @classmethod
    def empty(cls) -> "FaceRows":
        return cls(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros((0, NUM_CLASSES)),
                   np.zeros((0, NUM_CLASSES)))

    @classmethod
    def from_faces(cls, frame: int, time_s: float, faces: Faces) -> "FaceRows":
        """One frame's tracked, classified and smoothed faces."""
        if faces.track_ids is None or faces.smoothed is None:
            raise ValueError("faces need track ids and smoothed rows")
        n = len(faces)
        return cls(np.full(n, frame), np.full(n, time_s), faces.track_ids, faces.boxes, faces.probabilities,
                   faces.smoothed)

    @classmethod
    def concat(cls, parts: list["FaceRows"]) -> "FaceRows":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.column_names()))

    @staticmethod
    def column_names() -> tuple[str, ...]:
        return ("frame", "time_s", "track", "boxes", "probabilities", "smoothed")

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, selection: np.ndarray) -> "FaceRows":
        """The rows a boolean mask or an index array selects."""
        return FaceRows(*(getattr(self, name)[selection] for name in self.column_names()))

    def with_tracks(self, track: np.ndarray) -> "FaceRows":
        return FaceRows(self.frame, self.time_s, track, self.boxes, self.probabilities, self.smoothed)

    @property
    def labels(self) -> list[str]:
        """Each face's label: the class of its smoothed row (what the annotated video shows)."""
        return [EMOTIONS[i] for i in np.argmax(self.smoothed, axis=1)] if len(self) else []

    def faces_of_frame(self, frame: int) -> Faces:
        """The rows of one frame as ``Faces`` (for drawing)."""
        rows = self.take(self.frame == frame)
        return Faces(rows.boxes, rows.probabilities, rows.track, rows.smoothed)
