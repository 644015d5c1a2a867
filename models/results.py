"""The core result types: one detected face with its expression, and one analysed image."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fervid.models.labels import EMOTIONS


@dataclass(frozen=True)
class FaceExpression:
    """A face box ``(x, y, w, h)`` in image pixels and its probabilities in ``EMOTIONS`` order."""

    box: tuple[int, int, int, int]
    probabilities: tuple[float, ...]

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(max(self.probabilities))

    def to_dict(self) -> dict:
        """The JSON shape used by the CLI, the ZMQ header and the GUI."""
        return {"box": [int(v) for v in self.box], "emotion": self.emotion,
                "confidence": round(self.confidence, 6),
                "probabilities": {name: round(float(p), 6) for name, p in zip(EMOTIONS, self.probabilities)}}

    @classmethod
    def from_dict(cls, data: dict) -> "FaceExpression":
        """Inverse of :meth:`to_dict` (probabilities keyed by class name)."""
        probs = data["probabilities"]
        return cls(box=tuple(int(v) for v in data["box"]),
                   probabilities=tuple(float(probs[name]) for name in EMOTIONS))


@dataclass(frozen=True)
class ImageResult:
    """Every face found in one image."""

    image: str
    faces: list[FaceExpression] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"image": self.image, "faces": [face.to_dict() for face in self.faces]}
