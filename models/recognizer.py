"""Detector + classifier: faces and their expressions in one frame or image file.

Used by ``fervid predict``, the desktop app and the benchmarks' baselines; the service splits the
same two steps across actors but calls the same detector, preprocessing and classifier.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fervid.models.classifier import EmotionClassifier
from fervid.models.face_detector import DetectorParams, HaarFaceDetector
from fervid.media.image_io import load_image
from fervid.models.preprocessing import crop_faces, to_grey
from fervid.models.faces import Faces
from fervid.models.results import ImageResult
from fervid.models.scan_plan import ScanPlan
from fervid.models.stream_tracking import StreamTracking


class Recognizer:
    """Find faces with Haar and classify all of a frame's faces in one batched call."""

    def __init__(self, classifier: EmotionClassifier, detector: HaarFaceDetector | None = None):
        self.classifier = classifier
        self.detector = detector or HaarFaceDetector()

    @classmethod
    def load(cls, model_path: str | Path | None = None, params: DetectorParams | None = None,
             flip_average: bool = True) -> "Recognizer":
        return cls(EmotionClassifier.load(model_path, flip_average=flip_average), HaarFaceDetector(params))

    def recognise(self, image: np.ndarray, plan: ScanPlan | None = None) -> Faces:
        """Faces and expressions in a BGR or grey frame: a full scan, or what ``plan`` says."""
        grey = to_grey(image)
        boxes = self.detector.detect_plan(grey, plan)
        if len(boxes) == 0:
            return Faces.empty()
        return Faces(boxes, self.classifier.predict(crop_faces(grey, boxes)))

    def recognise_tracked(self, tracking: StreamTracking, ts: float, image: np.ndarray) -> Faces:
        """The next frame of ``tracking``'s stream (frames in order, ``ts`` its time): scanned as
        the stream's plan says, classified, matched to its tracks and smoothed. The one
        in-process video path (the app, recorded video); the service runs the same steps on actors."""
        plan = tracking.plan(ts, image)
        return tracking.apply(ts, plan, self.recognise(image, plan))

    def recognise_file(self, path: str | Path) -> ImageResult:
        """Load an image safely and recognise it."""
        return ImageResult(image=str(path), faces=self.recognise(load_image(path)))
