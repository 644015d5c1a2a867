"""DynamicBatcher (with a plain numpy model) and the classifier's start-up tracing.

The fake model writes each crop's identity into its output row, so a test can check that
every caller gets exactly its own rows back, whichever batch they travelled in.
"""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from fervid.models.labels import NUM_CLASSES
from fervid.services.inference import DynamicBatcher


def crops_for(ids) -> np.ndarray:
    """48x48 uint8 crops whose first pixels spell the crop's id (ids < 65536)."""
    ids = np.asarray(list(ids), dtype=np.int64)
    crops = np.zeros((len(ids), 48, 48), np.uint8)
    crops[:, 0, 0] = ids // 256
    crops[:, 0, 1] = ids % 256
    return crops


class Model:
    """predict(): one row per crop, column 0 = the crop's id; records every batch it saw."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        ids = crops[:, 0, 0].astype(np.int64) * 256 + crops[:, 0, 1]
        with self.lock:
            self.batches.append(ids.tolist())
        if self.delay_s:
            time.sleep(self.delay_s)
        out = np.zeros((len(crops), NUM_CLASSES), np.float32)
        out[:, 0] = ids
        return out


@pytest.fixture
def make_batcher():
    made = []

    def make(predict, max_batch=8, max_wait_s=0.01, on_batch=None) -> DynamicBatcher:
        batcher = DynamicBatcher(predict, max_batch, max_wait_s, on_batch=on_batch)
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.stop()


def ids_of(result) -> list[int]:
    probabilities, _, _ = result
    return probabilities[:, 0].astype(int).tolist()


def test_full_batch_is_flushed_without_waiting_for_max_wait(make_batcher):
    """Once max_batch faces wait, the model runs at once; a 10 s max_wait is never sat out."""
    model = Model()
    batcher = make_batcher(model, max_batch=8, max_wait_s=10.0)
    start = time.monotonic()
    futures = [batcher.submit(crops_for(range(i * 2, i * 2 + 2))) for i in range(4)]
    results = [future.result(timeout=9) for future in futures]
    assert time.monotonic() - start < 5
    assert model.batches == [list(range(8))]
    for i, result in enumerate(results):
        assert ids_of(result) == [i * 2, i * 2 + 1]
        assert result[1:] == (8, 4)  # faces and frames of the batch it shared


def test_partial_batch_is_flushed_after_max_wait(make_batcher):
    """A lone frame is not held for ever: it runs once max_wait has passed since it arrived."""
    model = Model()
    batcher = make_batcher(model, max_batch=64, max_wait_s=0.2)
    start = time.monotonic()
    result = batcher.submit(crops_for([5, 6, 7])).result(timeout=10)
    waited = time.monotonic() - start
    assert ids_of(result) == [5, 6, 7]
    assert result[1:] == (3, 1)
    assert 0.19 <= waited < 5, f"flushed after {waited:.3f}s"


def test_concurrent_submitters_each_get_their_own_rows(make_batcher):
    """Many threads (streams) submit at once: every frame gets back exactly its crops' rows,
    and frames really were batched together."""
    model = Model()
    batcher = make_batcher(model, max_batch=16, max_wait_s=0.005)
    failures: list[str] = []
    next_id = iter(range(1, 60000))
    id_lock = threading.Lock()

    def stream(seed: int):
        rng = random.Random(seed)
        for _ in range(25):
            with id_lock:
                ids = [next(next_id) for _ in range(rng.randint(0, 6))]
            got = ids_of(batcher.submit(crops_for(ids)).result(timeout=30))
            if got != ids:
                failures.append(f"sent {ids}, got {got}")

    threads = [threading.Thread(target=stream, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]
    assert any(len(batch) > 6 for batch in model.batches), "no batch held more than one frame"


def test_frames_are_never_split_and_batches_respect_max_batch(make_batcher):
    """Frames of 3, 3, 3, 20 and 2 faces with max_batch 8: each frame's crops stay in one model
    call, and only the 20-face frame (alone) exceeds 8."""
    model = Model(delay_s=0.05)  # lets the queue build up behind a running batch
    batcher = make_batcher(model, max_batch=8, max_wait_s=0.05)
    frames = [list(range(100, 103)), list(range(200, 203)), list(range(300, 303)),
              list(range(400, 420)), list(range(500, 502))]
    futures = [batcher.submit(crops_for(ids)) for ids in frames]
    for ids, future in zip(frames, futures):
        assert ids_of(future.result(timeout=10)) == ids
    for batch in model.batches:
        assert len(batch) <= 8 or batch == frames[3], batch
        firsts = {i // 100 for i in batch}  # which frames are in this batch
        for frame_no in firsts:
            assert [i for i in batch if i // 100 == frame_no] == frames[frame_no - 1]
    assert sorted(i for batch in model.batches for i in batch) == sorted(i for ids in frames for i in ids)


def test_empty_frame_returns_immediately_without_a_model_call(make_batcher):
    """A frame with no faces must not wait for a batch (or wake the model) at all."""
    model = Model()
    batcher = make_batcher(model, max_batch=8, max_wait_s=10.0)
    future = batcher.submit(np.zeros((0, 48, 48), np.uint8))
    assert future.done()
    probabilities, faces, frames = future.result()
    assert probabilities.shape == (0, NUM_CLASSES) and (faces, frames) == (0, 0)
    time.sleep(0.05)
    assert model.batches == []


def test_model_errors_reach_every_caller_and_the_batcher_goes_on(make_batcher):
    """One failing model call fails the frames in that batch (no caller hangs); the next batch works."""
    calls = []

    def predict(crops):
        calls.append(len(crops))
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return Model()(crops)

    batcher = make_batcher(predict, max_batch=6, max_wait_s=5.0)
    futures = [batcher.submit(crops_for([i, i + 1])) for i in (0, 10, 20)]  # 6 faces: one batch
    for future in futures:
        with pytest.raises(RuntimeError, match="model exploded"):
            future.result(timeout=10)
    assert calls == [6]
    again = batcher.submit(crops_for(range(6))).result(timeout=10)
    assert ids_of(again) == list(range(6))


def test_stop_fails_callers_still_queued():
    """Frames queued behind a running batch when the batcher stops get an error, not a hang."""
    release = threading.Event()
    started = threading.Event()

    def predict(crops):
        started.set()
        release.wait(10)
        return Model()(crops)

    batcher = DynamicBatcher(predict, max_batch=2, max_wait_s=0.0)
    running = batcher.submit(crops_for([1, 2]))
    assert started.wait(10)
    queued = [batcher.submit(crops_for([3, 4])), batcher.submit(crops_for([5]))]
    threading.Timer(0.2, release.set).start()  # the running batch finishes during stop()
    batcher.stop()
    assert ids_of(running.result(timeout=1)) == [1, 2]
    for future in queued:
        assert future.done()
        with pytest.raises(RuntimeError, match="stopped"):
            future.result(timeout=0)
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.submit(crops_for([6]))


def test_stop_does_not_leave_a_waiting_batch_hanging():
    """A frame waiting out a long max_wait is finished (result or error) by the time stop() returns."""
    batcher = DynamicBatcher(Model(), max_batch=64, max_wait_s=30.0)
    future = batcher.submit(crops_for([1]))
    start = time.monotonic()
    batcher.stop()
    assert time.monotonic() - start < 10
    assert future.done()


def test_on_batch_reports_faces_frames_and_model_seconds(make_batcher):
    """The actor's batch metrics come from on_batch(faces, frames, seconds of the model call)."""
    reports = []
    batcher = make_batcher(Model(delay_s=0.05), max_batch=5, max_wait_s=5.0,
                           on_batch=lambda *args: reports.append(args))
    futures = [batcher.submit(crops_for([1, 2])), batcher.submit(crops_for([3, 4, 5]))]
    for future in futures:
        future.result(timeout=10)
    assert len(reports) == 1
    faces, frames, seconds = reports[0]
    assert (faces, frames) == (5, 2)
    assert 0.04 <= seconds < 5


def test_classifier_warm_up_traces_every_bucket_up_to_max_batch(classifier):
    """The service compiles all padded batch sizes it can meet at start-up (1, 2, 4, ..., 64 for
    max_batch 64), so no live batch waits for the backend to compile. With flip_average every
    crop is classified twice, so 64 crops need the 128 bucket too."""
    from fervid.models.classifier import EmotionClassifier

    plain = EmotionClassifier(classifier.model, flip_average=False)  # the service's default
    assert plain.warm_up(64) == [1, 2, 4, 8, 16, 32, 64]
    assert plain.warm_up(5) == [1, 2, 4, 8]
    assert plain.warm_up(1) == [1]
    assert plain.warm_up(1000) == [1, 2, 4, 8, 16, 32, 64, 128, 256]  # capped at the largest bucket
    flipping = EmotionClassifier(classifier.model, flip_average=True)
    assert flipping.warm_up(64) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert flipping.warm_up(2) == [1, 2, 4]
    probabilities = plain.predict(crops_for(range(3)))
    assert probabilities.shape == (3, NUM_CLASSES)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
