"""Training targets: FER2013 one-hot labels, optionally blended with FER+ vote distributions.

FER+ gives ten annotators' votes per image; blending them into the target teaches the model
which expressions people actually confuse, which is a better signal than uniform label
smoothing. The FER2013 label stays in the mix because that is what the reported figure
(PublicTest accuracy against the original labels) measures.
"""
from __future__ import annotations

import numpy as np

from fervid.models.labels import NUM_CLASSES


def one_hot(labels: np.ndarray) -> np.ndarray:
    """N integer labels to an N x 7 float32 one-hot matrix."""
    out = np.zeros((labels.shape[0], NUM_CLASSES), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def blend_ferplus(labels: np.ndarray, ferplus: np.ndarray | None, weight: float) -> np.ndarray:
    """``(1 - weight) * one_hot(labels) + weight * ferplus``; rows without FER+ votes stay one-hot."""
    targets = one_hot(labels)
    if ferplus is None or weight <= 0:
        return targets
    if not 0 < weight <= 1:
        raise ValueError(f"FER+ weight must be in (0, 1], got {weight}")
    usable = ~np.isnan(ferplus).any(axis=1)
    targets[usable] = (1 - weight) * targets[usable] + weight * ferplus[usable]
    return targets
