"""Teacher probabilities for knowledge distillation (``fervid train --teacher MODEL``).

Why offline: the teacher (typically an ensemble from ``fervid ensemble``, as for the shipped model)
is run once over the training images before the first epoch, not beside the student in every step, so
distilling costs one pass of inference, not a second model in the training loop, and works the same on every
backend and on Ray Train workers. The probabilities are of the clean images (flip-averaged, as
``evaluate`` scores the teacher); augmented copies of an image share its teacher target.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fervid.models.classifier import EmotionClassifier
from fervid.training.targets import soften

BATCH = 256
"""Rows per call: the classifier's largest padded batch."""


def load_teacher(path: Path) -> EmotionClassifier:
    """Load the teacher with every check ``EmotionClassifier.load`` makes (one-line errors)."""
    return EmotionClassifier.load(path, flip_average=True)


def teacher_probabilities(teacher: EmotionClassifier, pixels: np.ndarray, temperature: float = 1.0,
                          log: Callable[[str], None] = print) -> np.ndarray:
    """N x 7 probabilities of ``teacher`` for N uint8 48x48 crops, softened by ``temperature``."""
    started = time.monotonic()
    probs = np.concatenate([teacher.predict(pixels[i:i + BATCH]) for i in range(0, len(pixels), BATCH)])
    log(f"teacher {teacher.path}: {len(pixels)} images in {time.monotonic() - started:.1f} s "
        f"(temperature {temperature:g})")
    return soften(probs, temperature)
