"""Data augmentation of uint8 face crops on the CPU, prepared one epoch at a time.

Why not Keras' random image layers inside the model: measured on an H100 with the JAX backend,
a Mini-Xception (width 2) training step took 7 ms without them and 670 ms with them (PyTorch
backend: 470 ms), so they would make the GPU wait on augmentation. OpenCV on the host takes
microseconds per 48x48 crop and works the same under every Keras backend.
"""
from __future__ import annotations

import cv2
import numpy as np

from fervid.models.preprocessing import FACE_SIZE, normalise


def augment_crops(crops: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Randomly flip, shift (±10%), rotate (±10°), zoom (±10%) and jitter brightness/contrast.

    ``crops`` is N x 48 x 48 uint8; a new uint8 array is returned. ``strength`` scales every
    range (0 keeps only the horizontal flip, which never changes an expression).
    """
    out = np.empty_like(crops)
    n = crops.shape[0]
    flips = rng.random(n) < 0.5
    s = float(strength)
    angles = rng.uniform(-10 * s, 10 * s, n)
    scales = rng.uniform(1 - 0.1 * s, 1 + 0.1 * s, n)
    shifts = rng.uniform(-0.1 * s, 0.1 * s, (n, 2)) * FACE_SIZE
    gains = rng.uniform(1 - 0.3 * s, 1 + 0.3 * s, n)
    offsets = rng.uniform(-0.2 * s, 0.2 * s, n) * 127.5
    centre = ((FACE_SIZE - 1) / 2.0, (FACE_SIZE - 1) / 2.0)
    for i in range(n):
        image = crops[i, :, ::-1] if flips[i] else crops[i]
        if s > 0:
            matrix = cv2.getRotationMatrix2D(centre, angles[i], scales[i])
            matrix[:, 2] += shifts[i]
            image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (FACE_SIZE, FACE_SIZE),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            mean = float(image.mean())
            image = np.clip((image.astype(np.float32) - mean) * gains[i] + mean + offsets[i], 0, 255)
        out[i] = image
    return out


ERASE_AREA = (0.02, 0.2)
"""Share of the crop a random erasing rectangle covers (Zhong et al. 2020's defaults, 2% to 20%)."""
ERASE_ASPECT = (0.3, 1 / 0.3)
"""Height over width of the rectangle, drawn log-uniformly between these."""


def erase_rectangles(crops: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Random erasing: with ``probability``, fill one random rectangle of each crop with noise.

    Why: the 73%+ FER2013 models train with it; it makes the model use the whole face instead of
    one region (a mouth, an eyebrow) that may be hidden by a hand or a shadow in a camera crop.
    Returns a new uint8 array; ``probability`` 0 returns an unchanged copy.
    """
    out = crops.copy()
    n, height, width = crops.shape
    chosen = rng.random(n) < probability
    areas = rng.uniform(*ERASE_AREA, n) * height * width
    aspects = np.exp(rng.uniform(np.log(ERASE_ASPECT[0]), np.log(ERASE_ASPECT[1]), n))
    for i in np.flatnonzero(chosen):
        h = int(np.clip(round(np.sqrt(areas[i] * aspects[i])), 1, height))
        w = int(np.clip(round(np.sqrt(areas[i] / aspects[i])), 1, width))
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        out[i, top:top + h, left:left + w] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    return out


def mix_up(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
           alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018): each sample blended with a random partner, targets alike.

    The weight of each pair is drawn from Beta(alpha, alpha) and kept at 0.5 or more, so every
    mixed sample is still mostly its own image. ``alpha`` 0 returns the inputs unchanged.
    """
    if alpha <= 0:
        return x, y
    lam = rng.beta(alpha, alpha, x.shape[0]).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    partner = rng.permutation(x.shape[0])
    lam_x = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    mixed_x = (lam_x * x + (1 - lam_x) * x[partner]).astype(x.dtype)
    mixed_y = (lam[:, None] * y + (1 - lam[:, None]) * y[partner]).astype(y.dtype)
    return mixed_x, mixed_y


def augmented_epoch(crops: np.ndarray, targets: np.ndarray, epoch: int, strength: float = 1.0,
                    seed: int = 0, erasing: float = 0.0,
                    mixup: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of training data: shuffled, augmented and normalised (deterministic per epoch).

    Whole epochs are prepared up front and handed to ``model.fit`` as arrays (about 2 s for
    FER2013 on one core). A threaded ``keras.utils.PyDataset`` was tried first: on TensorFlow
    2.21 it intermittently crashed the process with heap corruption, and arrays work the same
    under every backend. Random erasing (probability ``erasing``) and mixup (Beta parameter
    ``mixup``) draw from their own random streams, so turning them off gives exactly the epochs
    of a run without them.
    """
    if crops.shape[0] != targets.shape[0]:
        raise ValueError("crops and targets differ in length")
    order = np.random.default_rng((seed, epoch)).permutation(crops.shape[0])
    rng = np.random.default_rng((seed, epoch, 1))
    images = augment_crops(crops[order], rng, strength)
    if erasing > 0:
        images = erase_rectangles(images, np.random.default_rng((seed, epoch, 2)), erasing)
    x, y = normalise(images), targets[order]
    return mix_up(x, y, np.random.default_rng((seed, epoch, 3)), mixup)
