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


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Raise a probability matrix to ``1 / temperature`` and renormalise each row.

    This is ``softmax(log(p) / T)``: the distillation temperature applied to a teacher that gives
    probabilities, not logits (an ensemble's output is a mean of probabilities). T > 1 spreads
    each row over the classes the teacher finds similar, which is what the student learns from.
    """
    if temperature == 1:
        return probabilities.astype(np.float32)
    logs = np.log(np.clip(probabilities.astype(np.float64), 1e-12, None)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    soft = np.exp(logs)
    return (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)


def blend_teacher(targets: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * targets + weight * teacher``: knowledge distillation with the teacher's
    probabilities computed once, on the un-augmented images, before training."""
    if not 0 <= weight <= 1:
        raise ValueError(f"teacher weight must be in [0, 1], got {weight}")
    if teacher.shape != targets.shape:
        raise ValueError(f"teacher probabilities {teacher.shape} do not match the targets {targets.shape}")
    return ((1 - weight) * targets + weight * teacher).astype(np.float32)
