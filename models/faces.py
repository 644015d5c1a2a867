"""``Faces``: the one type for the faces of one frame or image, from detection to the screen.

Columns of arrays, the way supervision's ``Detections`` holds them: the detector fills ``boxes``,
the classifier adds ``probabilities``, ``fervid.comms`` turns the whole into the wire format and
back, and drawing, tables and the CLI read it directly. Every path (CLI, app, service, monitor)
therefore agrees on one shape and one rounding, and nothing converts a face five times on its way.

Video adds two optional columns (``fervid.models.stream_tracking``): the id of the track each face
belongs to, and the track's smoothed probabilities. Where faces are smoothed, the label shown
(``emotions``, ``confidences``) is the smoothed one: a label that flickers from frame to frame with
the raw rows is what tracks are for.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from fervid.models.labels import EMOTIONS, NUM_CLASSES

ROUND_DIGITS = 6
"""Probabilities in JSON documents and messages: enough to compare, short enough to read."""


def _boxes(boxes: object) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    return array


def _named(row: np.ndarray) -> dict[str, float]:
    return {name: round(float(p), ROUND_DIGITS) for name, p in zip(EMOTIONS, row)}


def _rows_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(a, b, rtol=0, atol=0.6 * 10 ** -ROUND_DIGITS))


@dataclass(frozen=True, eq=False)
class Faces:
    """N faces: ``boxes`` N x 4 int32 ``(x, y, w, h)`` in image pixels; ``probabilities`` N x 7
    float32 in ``EMOTIONS`` order, or ``None`` while the faces are detected but not yet classified;
    in video, ``track_ids`` (N int64) and ``smoothed`` (N x 7 float32, the track's averaged rows)."""

    boxes: np.ndarray
    probabilities: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    smoothed: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _boxes(self.boxes)
        object.__setattr__(self, "boxes", boxes)
        for name in ("probabilities", "smoothed"):
            value = getattr(self, name)
            if value is not None:
                rows = np.asarray(value, dtype=np.float32).reshape(-1, NUM_CLASSES)
                if len(rows) != len(boxes):
                    raise ValueError(f"{len(boxes)} boxes but {len(rows)} {name} rows")
                object.__setattr__(self, name, rows)
        if self.smoothed is not None and self.probabilities is None:
            raise ValueError("smoothed rows need the raw probabilities beside them")
        if self.track_ids is not None:
            ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            if len(ids) != len(boxes):
                raise ValueError(f"{len(boxes)} boxes but {len(ids)} track ids")
            object.__setattr__(self, "track_ids", ids)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def empty(cls, classified: bool = True) -> "Faces":
        """No faces (classified by default: there is nothing to classify)."""
        return cls(np.zeros((0, 4), np.int32), np.zeros((0, NUM_CLASSES), np.float32) if classified else None)

    def with_probabilities(self, probabilities: np.ndarray) -> "Faces":
        """The same boxes (and tracks) with the classifier's rows (one per box, in the same order)."""
        return Faces(self.boxes, probabilities, self.track_ids)

    def with_tracks(self, track_ids: np.ndarray, smoothed: np.ndarray | None = None) -> "Faces":
        """The same faces with the id of each one's track and, when smoothing is on, its smoothed row."""
        return Faces(self.boxes, self.probabilities, track_ids, smoothed)

    def take(self, indices: np.ndarray | list[int]) -> "Faces":
        """The faces at ``indices`` (in that order), every column with them."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        return Faces(*(None if column is None else column[index]
                       for column in (self.boxes, self.probabilities, self.track_ids, self.smoothed)))

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> "Faces":
        """Inverse of :meth:`to_records`: dicts with ``box`` and ``probabilities`` keyed by class name,
        and ``track`` and ``smoothed`` when every record has them.

        ``emotion`` and ``confidence`` are derived, so they are not read; validation of untrusted
        records is ``fervid.comms.messages``'s job.
        """
        records = list(records)
        if not records:
            return cls.empty()
        boxes = [record["box"] for record in records]
        probabilities = [[record["probabilities"][name] for name in EMOTIONS] for record in records]
        tracks = ([record["track"] for record in records]
                  if all("track" in record for record in records) else None)
        smoothed = ([[record["smoothed"][name] for name in EMOTIONS] for record in records]
                    if all("smoothed" in record for record in records) else None)
        return cls(np.asarray(boxes, np.int32), np.asarray(probabilities, np.float32),
                   None if tracks is None else np.asarray(tracks, np.int64),
                   None if smoothed is None else np.asarray(smoothed, np.float32))

    # -- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def classified(self) -> bool:
        return self.probabilities is not None

    def _require_probabilities(self) -> np.ndarray:
        if self.probabilities is None:
            raise ValueError("these faces are not classified yet")
        return self.probabilities

    @property
    def shown(self) -> np.ndarray:
        """The rows the label comes from: the smoothed ones where there are any, else the raw ones."""
        return self.smoothed if self.smoothed is not None else self._require_probabilities()

    @property
    def emotions(self) -> list[str]:
        """The most probable class of each face (of the smoothed rows, when smoothed)."""
        return [EMOTIONS[int(i)] for i in np.argmax(self.shown, axis=1)] if len(self) else []

    @property
    def confidences(self) -> np.ndarray:
        """The probability of each face's shown class."""
        shown = self.shown
        return shown.max(axis=1) if len(self) else np.zeros(0, np.float32)

    def sorted_left_to_right(self) -> "Faces":
        """The faces ordered by box position (x, then y): a stable order for tables and reports."""
        return self.take(np.lexsort((self.boxes[:, 1], self.boxes[:, 0])))

    def to_records(self) -> list[dict]:
        """One JSON-ready dict per face: ``{"box", "emotion", "confidence", "probabilities": {name: p}}``,
        plus ``"track"`` and ``"smoothed": {name: p}`` for tracked faces (``emotion`` and
        ``confidence`` are then the smoothed ones).

        The shape of ``fervid predict --json``'s faces and of the ZMQ header's faces (docs/architecture.md, "The ZMQ message").
        """
        probabilities = self._require_probabilities()
        records = []
        for i, (box, row, emotion, confidence) in enumerate(zip(self.boxes, probabilities, self.emotions,
                                                                 self.confidences)):
            record = {"box": [int(v) for v in box], "emotion": emotion,
                      "confidence": round(float(confidence), ROUND_DIGITS), "probabilities": _named(row)}
            if self.track_ids is not None:
                record["track"] = int(self.track_ids[i])
            if self.smoothed is not None:
                record["smoothed"] = _named(self.smoothed[i])
            records.append(record)
        return records

    def __eq__(self, other: object) -> bool:
        """Same boxes, and probabilities equal to the precision they travel with (``ROUND_DIGITS``),
        so faces compare equal before and after a trip through JSON."""
        if not isinstance(other, Faces):
            return NotImplemented
        if not np.array_equal(self.boxes, other.boxes) or self.classified != other.classified:
            return False
        if (self.track_ids is None) != (other.track_ids is None) or (
                self.track_ids is not None and not np.array_equal(self.track_ids, other.track_ids)):
            return False
        return all(_rows_equal(mine, theirs) for mine, theirs in ((self.probabilities, other.probabilities),
                                                                   (self.smoothed, other.smoothed)))

    __hash__ = None  # mutable arrays inside: not hashable

    def __repr__(self) -> str:
        state = "classified" if self.classified else "detected"
        tracked = ", tracked" if self.track_ids is not None else ""
        return f"Faces({len(self)} {state}{tracked})"
