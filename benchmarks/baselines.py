"""The two reference points the service is measured against, both without Ray or ZMQ.

* ``naive``: what a typical FER script does: one process reads a frame, runs Haar on it,
  classifies that frame's faces, and only then reads the next one. OpenCV and TensorFlow keep
  their default threading, as they would in such a script.
* ``ceiling``: the most this machine can do with the same detector and classifier: as many
  plain processes as there are cores, each single-threaded, each looping detection +
  classification over frames decoded in advance (no capture, no messaging, no waiting).

Both use the service's own detector settings and classifier (no flip averaging), so the
ratios isolate what the service's architecture adds or costs.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fervid.benchmarks.common import decode_frames
from fervid.models.face_detector import DetectorParams


@dataclass(frozen=True)
class LoopResult:
    frames: int
    faces: int
    seconds: float
    latencies_s: list[float]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _single_thread() -> None:
    """One core per process: OpenCV and TensorFlow threads off (call before loading the model)."""
    import cv2

    cv2.setNumThreads(1)
    os.environ["TF_NUM_INTRAOP_THREADS"] = "1"
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # already initialised


def _recognizer(params: dict):
    """The project's one detect-crop-classify path, with the service's classifier settings."""
    from fervid.models.classifier import EmotionClassifier
    from fervid.models.face_detector import HaarFaceDetector
    from fervid.models.recognizer import Recognizer

    classifier = EmotionClassifier.load(flip_average=False)
    classifier.warm_up(16)
    return Recognizer(classifier, HaarFaceDetector(DetectorParams(**params)))


def _naive_worker(clip: str, params: dict, duration_s: float, queue) -> None:
    import cv2

    recognizer = _recognizer(params)
    capture = cv2.VideoCapture(clip, cv2.CAP_FFMPEG)
    frames = faces = 0
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < duration_s:
        read_at = time.perf_counter()
        ok, frame = capture.read()
        if not ok:  # loop the clip like the service does
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        faces += len(recognizer.recognise(frame))
        frames += 1
        latencies.append(time.perf_counter() - read_at)
    queue.put(asdict(LoopResult(frames, faces, time.perf_counter() - start, latencies)))


def _ceiling_worker(clip: str, params: dict, duration_s: float, barrier, queue) -> None:
    _single_thread()
    recognizer = _recognizer(params)
    frames_in_memory = decode_frames(Path(clip))
    barrier.wait()  # every process starts timing together, after its start-up
    frames = faces = 0
    latencies = []
    start = time.perf_counter()
    index = os.getpid()  # processes start at different frames, like independent streams
    while time.perf_counter() - start < duration_s:
        began = time.perf_counter()
        faces += len(recognizer.recognise(frames_in_memory[index % len(frames_in_memory)]))
        index += 1
        frames += 1
        latencies.append(time.perf_counter() - began)
    queue.put(asdict(LoopResult(frames, faces, time.perf_counter() - start, latencies)))


def _collect(processes: list, queue, timeout_s: float) -> list[LoopResult]:
    """One result per process; fails at once (not after the timeout) if a process died."""
    import queue as queue_module

    results: list[LoopResult] = []
    deadline = time.monotonic() + timeout_s
    while len(results) < len(processes):
        try:
            results.append(LoopResult(**queue.get(timeout=1.0)))
        except queue_module.Empty:
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for process in processes:
                    process.kill()
                why = f"exit code {dead[0].exitcode}" if dead else f"no result within {timeout_s:.0f} s"
                raise RuntimeError(f"a baseline process failed ({why})") from None
    for process in processes:
        process.join(timeout=30)
    return results


def run_naive(clip: Path, params: DetectorParams, duration_s: float) -> LoopResult:
    """The naive loop, in a fresh process, for ``duration_s`` of timed work."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_naive_worker, args=(str(clip), asdict(params), duration_s, queue))
    process.start()
    return _collect([process], queue, timeout_s=duration_s + 300)[0]


def run_ceiling(clip: Path, params: DetectorParams, duration_s: float, processes: int | None = None
                ) -> list[LoopResult]:
    """``processes`` (default: the number of cores) single-threaded loops running at once."""
    count = processes or os.cpu_count() or 1
    context = mp.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(count)
    workers = [context.Process(target=_ceiling_worker, args=(str(clip), asdict(params), duration_s, barrier, queue))
               for _ in range(count)]
    for worker in workers:
        worker.start()
    return _collect(workers, queue, timeout_s=duration_s + 300)
