"""One analysed image: its path and the faces found in it (the document ``fervid predict`` prints)."""
from __future__ import annotations

from dataclasses import dataclass, field

from fervid.models.faces import Faces


@dataclass(frozen=True)
class ImageResult:
    """Every face found in one image."""

    image: str
    faces: Faces = field(default_factory=Faces.empty)

    def to_dict(self) -> dict:
        return {"image": self.image, "faces": self.faces.to_records()}
