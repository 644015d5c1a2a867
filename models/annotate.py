"""Drawing results onto frames: shared by the live monitor, the desktop app and annotated videos.

Works on BGR numpy images (what OpenCV decodes and captures) so that the same pixels are drawn
whether a frame came over ZMQ or from a local camera, and a saved annotated image matches the
screen. No Qt here; ``gui.qt_image`` converts for display.
"""
from __future__ import annotations

import cv2
import numpy as np

from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS

EMOTION_COLOURS_BGR: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 240),
    "sad": (200, 120, 40), "surprise": (0, 140, 255), "neutral": (200, 200, 200),
}
"""One colour per class, used for boxes, labels and probability bars alike."""


def face_label(emotion: str, confidence: float, track: int | None = None) -> str:
    """``happy 87%``, or ``#3 happy 87%`` for a face of track 3: how a face's expression is written
    on boxes, bars and tables. The track id says which face it is from frame to frame, so a viewer
    can follow one person's (smoothed) expression among several."""
    label = f"{emotion} {float(confidence):.0%}"
    return label if track is None else f"#{int(track)} {label}"


def face_labels(faces: Faces) -> list[str]:
    """Each classified face's ``face_label``, with its track id when the faces carry them; the
    expression is the shown one (``Faces.emotions``: smoothed where the faces are smoothed)."""
    tracks = faces.track_ids if faces.track_ids is not None else [None] * len(faces)
    return [face_label(emotion, confidence, track)
            for emotion, confidence, track in zip(faces.emotions, faces.confidences, tracks)]


def label_scale(image: np.ndarray) -> tuple[float, int]:
    """Font scale and line thickness for ``image``: labels stay readable from thumbnails to 4K."""
    height, width = image.shape[:2]
    scale = max(0.4, min(width, height) / 720)
    return scale, max(1, int(round(2 * scale)))


def draw_faces(image: np.ndarray, faces: Faces) -> np.ndarray:
    """A copy of ``image`` with each classified face's box and label (``face_labels``) drawn on it."""
    out = np.ascontiguousarray(image.copy())
    scale, thickness = label_scale(out)
    for box, emotion, text in zip(faces.boxes, faces.emotions, face_labels(faces)):
        x, y, w, h = (int(v) for v in box)
        colour = EMOTION_COLOURS_BGR.get(emotion, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thickness)
        top = y - th - base - 4 if y - th - base - 4 >= 0 else y + h
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), colour, cv2.FILLED)
        cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return out


def ordered_probabilities(faces: Faces, index: int) -> list[tuple[str, float]]:
    """(class, probability) of face ``index`` in the canonical class order, for bars and tables:
    the row its label comes from (``Faces.shown``: smoothed where the faces are smoothed), so the
    longest bar is always the class the box is labelled with."""
    return [(name, float(p)) for name, p in zip(EMOTIONS, faces.shown[index])]
