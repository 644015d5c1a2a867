"""The seven expression classes, in FER2013 label order (0..6).

Every part of fervid (training, evaluation, the service, the GUI, metrics labels) takes class
names and their order from here, so a probability vector always means the same thing.
"""
from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(EMOTIONS)
