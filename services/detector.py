"""DetectorActor: Haar face boxes and 48x48 crops for frames from any stream.

A pool of these shares the CPUs. Each sets OpenCV to one thread so that the actors, not
OpenCV's internal threads, divide the cores (docs/architecture.md, "Actors"). A frame arrives as an object-store
reference resolved in place (no copy on the same node); only boxes and crops come back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import ray

from fervid.models.face_detector import DetectorParams, HaarFaceDetector
from fervid.models.preprocessing import crop_faces, to_grey
from fervid.models.scan_plan import ScanPlan
from fervid.services.runtime import Telemetry


@dataclass(frozen=True)
class Detection:
    boxes: np.ndarray
    """N x 4 int32, (x, y, w, h) in frame pixels."""
    crops: np.ndarray
    """N x 48 x 48 uint8, what the classifier takes."""
    seconds: float


def detect_faces(detector: HaarFaceDetector, frame: np.ndarray, plan: ScanPlan | None = None) -> Detection:
    """Greyscale once, find faces (a full scan, or what ``plan`` says), cut their crops: the whole
    detection stage for one frame."""
    start = time.perf_counter()
    grey = to_grey(frame)
    boxes = detector.detect_plan(grey, plan)
    crops = crop_faces(grey, boxes)
    return Detection(boxes, crops, time.perf_counter() - start)


@ray.remote
class DetectorActor:
    KIND = "detector"

    def __init__(self, params: DetectorParams, metrics_actor=None):
        import cv2

        cv2.setNumThreads(1)
        self._detector = HaarFaceDetector(params)
        self._telemetry = Telemetry(metrics_actor)
        self._telemetry.report_restart_if_any(self.KIND)

    def detect(self, frame: np.ndarray, plan: ScanPlan | None = None) -> Detection:
        """Run ``plan`` on ``frame`` (the stream's capture actor made it; none: a full scan).
        The plan travels with the frame, so this actor keeps no per-stream state and any
        detector of the pool can serve any frame."""
        return detect_faces(self._detector, frame, plan)

    def pid(self) -> int:
        import os

        return os.getpid()
