"""RayAnalysisPool on the session's real Ray: the same results as the in-process pool, lazily fed."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from fervid.analysis.in_process_pool import InProcessPool
from fervid.analysis.segments import AnalysisOptions, Segment, split
from fervid.analysis.video_file import open_video, probe_video
from fervid.errors import ModelLoadError, VideoError
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.face_detector import HaarFaceDetector
from fervid.models.recognizer import Recognizer
from fervid.services.analysis_pool import IN_FLIGHT_PER_WORKER, RayAnalysisPool

THREE_SEGMENTS = AnalysisOptions(segment_s=3.1)


@pytest.fixture
def pool(ray_session):
    """Two actors: both CPUs of the session's Ray, so each test closes its pool before the next."""
    pool = RayAnalysisPool(2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def sample():
    return probe_video(SAMPLE_CLIP)


def run_all(pool, segments):
    progress: dict[int, int] = {}

    def on_frames(segment, n):
        progress[segment.index] = progress.get(segment.index, 0) + n

    results = {segment.index: result for segment, result in pool.run(segments, on_frames)}
    return results, progress


def test_two_actors_give_the_in_process_pools_results(pool, sample, classifier):
    segments = split(sample, THREE_SEGMENTS)
    assert len(segments) == 3
    on_ray, progress = run_all(pool, segments)
    in_process, _ = run_all(InProcessPool(Recognizer(classifier, HaarFaceDetector())), segments)
    assert sorted(on_ray) == [0, 1, 2]
    for index, expected in in_process.items():
        result = on_ray[index]
        assert (result.start, result.stop, result.frames_analysed) == (expected.start, expected.stop,
                                                                       expected.frames_analysed)
        for rows, want in [(result.rows, expected.rows), (result.warmup_rows, expected.warmup_rows)]:
            assert np.array_equal(rows.frame, want.frame) and np.array_equal(rows.boxes, want.boxes)
            assert np.array_equal(rows.track, want.track)
            # The actors run TensorFlow as the service does (oneDNN on), this process without it.
            assert np.allclose(rows.probabilities, want.probabilities, atol=1e-4)
        assert progress[index] == segments[index].frames_to_analyse


def test_segments_are_taken_lazily_two_per_worker(pool, sample):
    segments = split(sample, AnalysisOptions(segment_s=1.0, every=5))
    taken = []

    def feed():
        for segment in segments:
            taken.append(segment.index)
            yield segment

    results = pool.run(feed())
    first, _ = next(results)
    assert len(taken) == IN_FLIGHT_PER_WORKER * pool.workers, "no more than two per worker before a result"
    rest = [segment for segment, _ in results]
    assert sorted(s.index for s in [first, *rest]) == list(range(len(segments)))
    assert all(s is segments[s.index] for s in [first, *rest]), "the given objects come back"


def test_a_truncated_video_comes_back_as_its_error(pool, tmp_path):
    path = tmp_path / "cut.avi"
    cap = open_video(SAMPLE_CLIP)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 360))
    for _ in range(120):
        writer.write(cap.read()[1])
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    info = probe_video(path)
    segment = Segment(info, AnalysisOptions(every=10), 0, 100, 105, 120)
    [(back, result)] = list(pool.run([segment]))
    assert back is segment and isinstance(result, VideoError) and "ends at frame" in str(result)


def test_workers_that_cannot_load_the_model_say_so_and_close_kills_the_actors(ray_session, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    with pytest.raises(ModelLoadError, match="could not start"):
        RayAnalysisPool(1, bad)
    pool = RayAnalysisPool(1)
    actor = pool._actors[0]
    pool.close()
    # ray.kill is asynchronous: a call sent at once can still reach the worker before the kill does (seen
    # under load in CI). The actor must stop answering within 30 s.
    deadline = time.monotonic() + 30
    while True:
        try:
            ray_session.get(actor.ready.remote(), timeout=30)
        except ray_session.exceptions.RayActorError:
            break
        assert time.monotonic() < deadline, "the actor still answers 30 s after close"
        time.sleep(0.2)
    assert ray_session.is_initialized(), "the session's Ray was not the pool's to shut down"


def test_without_a_worker_count_every_cpu_of_the_cluster_gets_one(ray_session):
    """`fervid analyze --address` without --workers: as many actors as the cluster has CPUs."""
    pool = RayAnalysisPool(None)
    try:
        assert pool.workers == int(ray_session.cluster_resources()["CPU"]) == 2
    finally:
        pool.close()
