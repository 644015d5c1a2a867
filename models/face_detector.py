"""Haar-cascade face detection (OpenCV's bundled ``haarcascade_frontalface_default.xml``).

The cascade file ships inside opencv-python(-headless) 4.x, so nothing is downloaded. The
knobs are exposed because detection is the CPU bottleneck of the whole system: ``downscale``
scans a smaller image (boxes are mapped back to full resolution), trading small faces for speed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.errors import ModelLoadError
from fervid.models.preprocessing import to_grey
from fervid.models.scan_plan import ScanPlan
from fervid.models.tracker import iou_matrix

DUPLICATE_IOU = 0.5
"""Boxes from different regions overlapping this much are one face."""

CASCADE_NAME = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class DetectorParams:
    """``detectMultiScale`` settings; ``min_size`` is in full-resolution pixels."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 30
    downscale: float = 1.0

    def __post_init__(self) -> None:
        if self.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {self.scale_factor}")
        if self.min_neighbors < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {self.min_neighbors}")
        if self.min_size < 1:
            raise ValueError(f"min_size must be >= 1, got {self.min_size}")
        if not 0 < self.downscale <= 1:
            raise ValueError(f"downscale must be in (0, 1], got {self.downscale}")


def cascade_path() -> Path:
    """Location of the frontal-face cascade shipped with OpenCV."""
    data = getattr(cv2, "data", None)
    if data is None:
        raise ModelLoadError("this OpenCV build ships no Haar cascades (fervid needs opencv 4.x)")
    return Path(data.haarcascades) / CASCADE_NAME


class HaarFaceDetector:
    """Find frontal faces; returns ``(x, y, w, h)`` boxes in the input image's pixels."""

    def __init__(self, params: DetectorParams | None = None):
        self.params = params or DetectorParams()
        path = cascade_path()
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelLoadError("cv2.CascadeClassifier is missing (OpenCV 5 dropped it; install opencv 4.x)")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelLoadError(f"cannot load the Haar cascade {path}")

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Boxes (N x 4 int32, x y w h) of faces in a grey or BGR image."""
        grey = to_grey(image)
        p = self.params
        scan = grey
        if p.downscale < 1.0:
            scan = cv2.resize(grey, None, fx=p.downscale, fy=p.downscale, interpolation=cv2.INTER_AREA)
        min_side = max(1, int(round(p.min_size * p.downscale)))
        found = self._cascade.detectMultiScale(scan, scaleFactor=p.scale_factor,
                                               minNeighbors=p.min_neighbors,
                                               minSize=(min_side, min_side))
        if len(found) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = np.asarray(found, dtype=np.float64)
        if p.downscale < 1.0:
            boxes /= p.downscale
        boxes = np.round(boxes).astype(np.int32)
        height, width = grey.shape[:2]
        boxes[:, 2] = np.minimum(boxes[:, 2], width - boxes[:, 0])
        boxes[:, 3] = np.minimum(boxes[:, 3], height - boxes[:, 1])
        return boxes

    def detect_plan(self, image: np.ndarray, plan: ScanPlan | None = None) -> np.ndarray:
        """Boxes found by running ``plan``: the full scan (also without a plan), or each region cut
        out, shrunk to the plan's ``face_px`` if any, and scanned for faces of its size range only;
        then the plan's carried boxes, unscanned (after the found ones, dropping any a region found
        again)."""
        grey = to_grey(image)
        if plan is None or plan.full:
            return self.detect(grey)
        found = self._scan_regions(grey, plan)
        if len(plan.carried):
            found.append(np.asarray(plan.carried, np.int32).reshape(-1, 4))
        if not found:
            return np.zeros((0, 4), dtype=np.int32)
        return _without_duplicates(np.concatenate(found))

    def _scan_regions(self, grey: np.ndarray, plan: ScanPlan) -> list[np.ndarray]:
        """The boxes found in each of the plan's regions, in frame coordinates (a list of arrays)."""
        height, width = grey.shape[:2]
        found = []
        for (x, y, w, h), lo, hi in zip(plan.regions, plan.min_sizes, plan.max_sizes):
            x0, y0 = max(0, int(x)), max(0, int(y))
            x1, y1 = min(width, int(x) + int(w)), min(height, int(y) + int(h))
            lo = max(1, int(lo))
            if x1 - x0 < lo or y1 - y0 < lo:
                continue
            region = grey[y0:y1, x0:x1]
            scale = min(1.0, plan.face_px / lo) if plan.face_px else 1.0
            if scale < 1.0:
                region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            small_lo = max(1, int(lo * scale))
            small_hi = int(np.ceil(hi * scale)) if hi > 0 else 0
            boxes = self._cascade.detectMultiScale(
                region, scaleFactor=self.params.scale_factor, minNeighbors=self.params.min_neighbors,
                minSize=(small_lo, small_lo), maxSize=(small_hi, small_hi))
            if len(boxes):
                boxes = np.round(np.asarray(boxes, np.float64) / scale).astype(np.int32)
                found.append(boxes + np.array([x0, y0, 0, 0], np.int32))
        return found


def _without_duplicates(boxes: np.ndarray) -> np.ndarray:
    """Keep the first of any boxes overlapping by ``DUPLICATE_IOU`` or more (regions do not
    overlap, but a face on the border of two may be found in both)."""
    if len(boxes) < 2:
        return boxes
    overlap = iou_matrix(boxes, boxes)
    keep: list[int] = []
    for i in range(len(boxes)):
        if all(overlap[i, j] < DUPLICATE_IOU for j in keep):
            keep.append(i)
    return boxes[keep]
