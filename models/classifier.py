"""``EmotionClassifier``: the trained Mini-Xception behind one batched, compiled call.

Calling ``model.predict`` once per face costs tens of milliseconds of Python and graph
overhead per call; this class instead predicts a whole batch of crops in one compiled call
(:mod:`fervid.models.inference_call`: a frozen graph on TensorFlow). Batches are padded up to a
few fixed sizes so that every backend compiles (JAX traces, oneDNN builds its kernels) once per
size, at warm-up, whatever number of faces a frame (or a batch across streams) holds.
"""
from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np

from fervid.errors import ModelLoadError
from fervid.models.classifier_paths import DEFAULT_MODEL_PATH, digest_path
from fervid.models.inference_call import best_call, named_call
from fervid.models.labels import NUM_CLASSES
from fervid.models.preprocessing import FACE_SIZE, normalise

BATCH_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Padded batch sizes, powers of two: at most 2x wasted work, one compilation per size."""


def bucket_for(n: int) -> int:
    """The smallest padded batch size that holds ``n`` crops (``n`` <= the largest bucket)."""
    for size in BATCH_BUCKETS:
        if n <= size:
            return size
    raise ValueError(f"{n} crops exceed the largest batch bucket {BATCH_BUCKETS[-1]}")


def _check_archive(path: Path) -> None:
    """Refuse a ``.keras`` zip whose members fail their CRC: bytes damaged on disk or in transfer.

    Checked before Keras is imported (about 20 ms for the shipped 9 MB), so a damaged file is named
    at once, in one line, instead of after the multi-second TensorFlow import and from inside Keras.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError,
            ValueError) as exc:
        raise ModelLoadError(f"model file {path} is damaged ({exc})") from None
    if bad is not None:
        raise ModelLoadError(f"model file {path} is damaged (bad checksum in {bad})")


def _check_shipped_digest(path: Path) -> None:
    """Refuse the shipped weights when their SHA-256 differs from the one shipped beside them.

    The archive's CRCs and Keras' structural checks pass for a well-formed file whose weights are
    wrong (altered, or replaced by another training run): only a digest made when the weights were
    chosen tells. User-supplied files (``--model``) have no shipped digest and get the other checks.
    """
    if path.resolve() != DEFAULT_MODEL_PATH.resolve():
        return
    expected_file = digest_path(DEFAULT_MODEL_PATH)
    try:
        expected = expected_file.read_text(encoding="ascii").split()[0].lower()
    except (OSError, UnicodeDecodeError, IndexError):
        raise ModelLoadError(f"model file {path} is the shipped model but its checksum {expected_file.name} "
                             f"is missing or unreadable; reinstall fervid") from None
    digest = hashlib.sha256()
    with path.open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ModelLoadError(f"model file {path} does not match its shipped SHA-256 ({expected_file.name}): "
                             f"the shipped weights were altered or damaged; reinstall fervid")


class EmotionClassifier:
    """Predict expression probabilities for 48x48 greyscale face crops.

    ``flip_average`` averages each face with its mirror image (test-time augmentation): about
    one point of accuracy for twice the compute, on by default for evaluation and still images.
    """

    def __init__(self, model, flip_average: bool = True, path: Path | None = None, call_path: str | None = None):
        """``call_path`` names how the model is run (:mod:`fervid.models.inference_call`); by default the
        fastest the backend offers. The call is made here, from the weights ``model`` has now."""
        self.model = model
        self.flip_average = flip_average
        self.path = path
        if call_path is None:
            self.call_path, self._call = best_call(model)
        else:
            self.call_path, self._call = call_path, named_call(model, call_path)

    @classmethod
    def load(cls, path: str | Path | None = None, flip_average: bool = True) -> "EmotionClassifier":
        """Load a ``.keras`` file, checking that it is a 48x48x1 -> 7-class model (and, for the shipped
        weights, that they are the ones whose SHA-256 ships beside them)."""
        path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        if path.is_dir():
            raise ModelLoadError(f"model file {path} is a directory, not a .keras file")
        if not path.is_file():
            raise ModelLoadError(f"model file {path} not found")
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(f"model file {path} is not a Keras .keras archive (corrupt or truncated)")
        _check_archive(path)
        _check_shipped_digest(path)
        import keras

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for damaged archives.
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
            raise ModelLoadError(f"model file {path} cannot be loaded: {reason}") from None
        in_shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
        out_shape = tuple(model.outputs[0].shape[1:]) if model.outputs else None
        if in_shape != (FACE_SIZE, FACE_SIZE, 1) or out_shape != (NUM_CLASSES,):
            raise ModelLoadError(f"model file {path} has the wrong architecture: input {in_shape}, "
                                 f"output {out_shape}; expected (48, 48, 1) -> ({NUM_CLASSES},)")
        return cls(model, flip_average=flip_average, path=path)

    def warm_up(self, max_batch: int = BATCH_BUCKETS[-1]) -> list[int]:
        """Trace every padded batch size up to the one holding ``max_batch`` crops.

        A long-running service calls this at start-up so that the first live batch of each size
        does not stall its stream while the backend compiles. Returns the sizes traced.
        """
        rows = max(1, max_batch) * (2 if self.flip_average else 1)  # flipping doubles the rows
        limit = bucket_for(min(rows, BATCH_BUCKETS[-1]))
        sizes = [size for size in BATCH_BUCKETS if size <= limit]
        for size in sizes:
            self._call(np.zeros((size, FACE_SIZE, FACE_SIZE, 1), dtype=np.float32))
        return sizes

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities (N x 7, float32, rows sum to 1) for N uint8 crops of 48x48."""
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        n = crops.shape[0]
        if n == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        x = normalise(crops)
        if self.flip_average:
            x = np.concatenate([x, x[:, :, ::-1]])
        out = np.empty((x.shape[0], NUM_CLASSES), dtype=np.float32)
        largest = BATCH_BUCKETS[-1]
        for start in range(0, x.shape[0], largest):
            chunk = x[start:start + largest]
            size = bucket_for(chunk.shape[0])
            padded = np.zeros((size, *chunk.shape[1:]), dtype=np.float32)
            padded[:chunk.shape[0]] = chunk
            out[start:start + chunk.shape[0]] = self._call(padded)[:chunk.shape[0]]
        if self.flip_average:
            out = (out[:n] + out[n:]) / 2.0
        return out / out.sum(axis=1, keepdims=True)
