"""``Faces``: the one type for the faces of one frame or image, from detection to the screen.

Columns of arrays, the way supervision's ``Detections`` holds them: the detector fills ``boxes``,
the classifier adds ``probabilities``, ``fervid.comms`` turns the whole into the wire format and
back, and drawing, tables and the CLI read it directly. Every path (CLI, app, service, monitor)
therefore agrees on one shape and one rounding, and nothing converts a face five times on its way.
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


@dataclass(frozen=True, eq=False)
class Faces:
    """N faces: ``boxes`` N x 4 int32 ``(x, y, w, h)`` in image pixels; ``probabilities`` N x 7
    float32 in ``EMOTIONS`` order, or ``None`` while the faces are detected but not yet classified."""

    boxes: np.ndarray
    probabilities: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _boxes(self.boxes)
        object.__setattr__(self, "boxes", boxes)
        if self.probabilities is not None:
            probabilities = np.asarray(self.probabilities, dtype=np.float32).reshape(-1, NUM_CLASSES)
            if len(probabilities) != len(boxes):
                raise ValueError(f"{len(boxes)} boxes but {len(probabilities)} probability rows")
            object.__setattr__(self, "probabilities", probabilities)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def empty(cls, classified: bool = True) -> "Faces":
        """No faces (classified by default: there is nothing to classify)."""
        return cls(np.zeros((0, 4), np.int32), np.zeros((0, NUM_CLASSES), np.float32) if classified else None)

    def with_probabilities(self, probabilities: np.ndarray) -> "Faces":
        """The same boxes with the classifier's rows (one per box, in the same order)."""
        return Faces(self.boxes, probabilities)

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> "Faces":
        """Inverse of :meth:`to_records`: dicts with ``box`` and ``probabilities`` keyed by class name.

        ``emotion`` and ``confidence`` are derived, so they are not read; validation of untrusted
        records is ``fervid.comms.messages``'s job.
        """
        records = list(records)
        if not records:
            return cls.empty()
        boxes = [record["box"] for record in records]
        probabilities = [[record["probabilities"][name] for name in EMOTIONS] for record in records]
        return cls(np.asarray(boxes, np.int32), np.asarray(probabilities, np.float32))

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
    def emotions(self) -> list[str]:
        """The most probable class of each face."""
        return [EMOTIONS[int(i)] for i in np.argmax(self._require_probabilities(), axis=1)] if len(self) else []

    @property
    def confidences(self) -> np.ndarray:
        """The probability of each face's most probable class."""
        probabilities = self._require_probabilities()
        return probabilities.max(axis=1) if len(self) else np.zeros(0, np.float32)

    def sorted_left_to_right(self) -> "Faces":
        """The faces ordered by box position (x, then y): a stable order for tables and reports."""
        order = np.lexsort((self.boxes[:, 1], self.boxes[:, 0]))
        return Faces(self.boxes[order], None if self.probabilities is None else self.probabilities[order])

    def to_records(self) -> list[dict]:
        """One JSON-ready dict per face: ``{"box", "emotion", "confidence", "probabilities": {name: p}}``.

        The shape of ``fervid predict --json``'s faces and of the ZMQ header's faces (docs/architecture.md, "The ZMQ message").
        """
        probabilities = self._require_probabilities()
        return [{"box": [int(v) for v in box], "emotion": emotion,
                 "confidence": round(float(row.max()), ROUND_DIGITS),
                 "probabilities": {name: round(float(p), ROUND_DIGITS) for name, p in zip(EMOTIONS, row)}}
                for box, row, emotion in zip(self.boxes, probabilities, self.emotions)]

    def __eq__(self, other: object) -> bool:
        """Same boxes, and probabilities equal to the precision they travel with (``ROUND_DIGITS``),
        so faces compare equal before and after a trip through JSON."""
        if not isinstance(other, Faces):
            return NotImplemented
        if not np.array_equal(self.boxes, other.boxes) or self.classified != other.classified:
            return False
        return not self.classified or bool(np.allclose(self.probabilities, other.probabilities,
                                                       rtol=0, atol=0.6 * 10 ** -ROUND_DIGITS))

    __hash__ = None  # mutable arrays inside: not hashable

    def __repr__(self) -> str:
        state = "classified" if self.classified else "detected"
        return f"Faces({len(self)} {state})"
