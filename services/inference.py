"""InferenceActor: Mini-Xception on batches gathered across all streams.

Each ``classify`` call (one frame's ``Detection``, from any stream) joins a queue; a single batching
thread runs the model when ``max_batch`` faces are waiting or ``max_wait_ms`` has passed since
the oldest waiting frame arrived, then hands every caller its own rows. The classifier pads
batches to fixed sizes, and all of them are traced at start-up, so nothing retraces live.
What leaves the actor is the frame's classified ``Faces`` and its stage times: the crops stop here.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import ray

from fervid.models.faces import Faces
from fervid.models.labels import NUM_CLASSES
from fervid.services.runtime import Telemetry


@dataclass(frozen=True)
class Classification:
    """One frame's result, all the publisher and the capture actor need (no crops, no image)."""

    faces: Faces
    """The detected boxes with one probability row each (EMOTIONS order)."""
    detect_seconds: float
    """Time the detector spent on the frame."""
    infer_seconds: float
    """From the call's arrival to its result, including the wait for the batch."""


class DynamicBatcher:
    """Gathers crops from concurrent callers into batches for one prediction function.

    A frame's crops are never split between batches, and a batch never exceeds ``max_batch``
    faces unless a single frame alone holds more.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int, max_wait_s: float,
                 on_batch: Callable[[int, int, float], None] | None = None):
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: deque[tuple[np.ndarray, Future, float]] = deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="dynamic-batcher", daemon=True)
        self._thread.start()

    def submit(self, crops: np.ndarray) -> Future:
        future: Future = Future()
        if len(crops) == 0:
            future.set_result((np.zeros((0, NUM_CLASSES), np.float32), 0, 0))
            return future
        with self._cond:
            if self._stopped:
                raise RuntimeError("batcher is stopped")
            self._queue.append((crops, future, time.monotonic()))
            self._cond.notify()
        return future

    def _take_batch(self) -> list[tuple[np.ndarray, Future, float]] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            deadline = self._queue[0][2] + self.max_wait_s
            while True:
                waiting = sum(len(item[0]) for item in self._queue)
                remaining = deadline - time.monotonic()
                if waiting >= self.max_batch or remaining <= 0 or self._stopped:
                    break
                self._cond.wait(remaining)
            batch, faces = [], 0
            while self._queue and (not batch or faces + len(self._queue[0][0]) <= self.max_batch):
                item = self._queue.popleft()
                batch.append(item)
                faces += len(item[0])
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            crops = np.concatenate([item[0] for item in batch])
            start = time.perf_counter()
            try:
                probabilities = self._predict(crops)
            except Exception as exc:  # give every caller the error instead of hanging them
                for _, future, _ in batch:
                    future.set_exception(exc)
                continue
            if self._on_batch:
                try:
                    self._on_batch(len(crops), len(batch), time.perf_counter() - start)
                except Exception:
                    pass  # a metrics hiccup must not stop the batcher (and hang every caller)
            row = 0
            for item_crops, future, _ in batch:
                future.set_result((probabilities[row:row + len(item_crops)], len(crops), len(batch)))
                row += len(item_crops)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        with self._cond:
            pending = list(self._queue)
            self._queue.clear()
        for _, future, _ in pending:
            future.set_exception(RuntimeError("batcher stopped"))


def limit_accelerator_memory() -> None:
    """Let the framework take GPU memory as needed rather than all of it at start-up.

    Must run before the backend initialises a GPU; a no-op on CPU-only machines.
    """
    from fervid.models.backend_env import SERVING, configure_tensorflow

    configure_tensorflow(SERVING)  # this actor may run on a node whose raylet fervid did not start
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX backend
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass  # already initialised in this process: growth was set by the env variable


@ray.remote
class InferenceActor:
    KIND = "inference"

    def __init__(self, model_path: str | None, max_batch: int, max_wait_ms: float,
                 flip_average: bool = False, metrics_actor=None):
        limit_accelerator_memory()
        from fervid.models.classifier import EmotionClassifier

        self._telemetry = Telemetry(metrics_actor)
        self._telemetry.report_restart_if_any(self.KIND)
        self._classifier = EmotionClassifier.load(model_path, flip_average=flip_average)
        self._classifier.warm_up(max_batch)
        self._batcher = DynamicBatcher(self._classifier.predict, max_batch, max_wait_ms / 1000.0,
                                       on_batch=self._record_batch)

    def _record_batch(self, faces: int, frames: int, seconds: float) -> None:
        self._telemetry.buffer.observe("fervid_inference_batch_size", faces)
        self._telemetry.buffer.observe("fervid_inference_batch_frames", frames)

    def classify(self, detection) -> Classification:
        """The faces of one frame (a ``Detection``) classified, batched with other streams' crops."""
        start = time.perf_counter()
        probabilities, _, _ = self._batcher.submit(detection.crops).result()
        return Classification(Faces(detection.boxes, probabilities), detection.seconds,
                              time.perf_counter() - start)

    def pid(self) -> int:
        """The actor's process id (for operators and fault-injection tests)."""
        return os.getpid()

    def ready(self) -> bool:
        return True
