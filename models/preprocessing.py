"""The one preprocessing path: greyscale, crop, resize to 48x48, scale to [-1, 1].

Training, evaluation, the CLI and the service all call these functions, so a face crop fed to
the classifier is prepared identically whether it came from a FER2013 CSV row or a camera.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FACE_SIZE: int = 48
"""Side of the square greyscale crop that Mini-Xception takes (FER2013's native size)."""


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return an 8-bit single-channel image from a BGR, BGRA or already grey frame."""
    if image.ndim == 2:
        return image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        return to_grey(image[:, :, 0])
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a grey, BGR or BGRA image, got shape {image.shape}")


def crop_faces(grey: np.ndarray, boxes: Sequence[Sequence[int]]) -> np.ndarray:
    """Cut each ``(x, y, w, h)`` box out of ``grey`` and resize it to 48x48 (uint8, N x 48 x 48).

    Boxes are clipped to the image so a face at the border still yields a crop.
    """
    crops = np.empty((len(boxes), FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    height, width = grey.shape[:2]
    for i, (x, y, w, h) in enumerate(boxes):
        x0, y0 = max(int(x), 0), max(int(y), 0)
        x1, y1 = min(int(x + w), width), min(int(y + h), height)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"box {(x, y, w, h)} lies outside the {width}x{height} image")
        face = grey[y0:y1, x0:x1]
        interpolation = cv2.INTER_AREA if face.shape[0] > FACE_SIZE else cv2.INTER_LINEAR
        crops[i] = cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=interpolation)
    return crops


def normalise(crops: np.ndarray) -> np.ndarray:
    """Scale uint8 crops (N x 48 x 48) to float32 in [-1, 1] with a channel axis (N x 48 x 48 x 1)."""
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    if crops.shape[-2:] != (FACE_SIZE, FACE_SIZE):
        raise ValueError(f"expected crops of {FACE_SIZE}x{FACE_SIZE}, got shape {crops.shape}")
    return (crops.astype(np.float32) / 127.5 - 1.0)[..., None]
