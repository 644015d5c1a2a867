"""analyse_videos on the sample clip and written videos, with the in-process pool and real results stores."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import read_rows
from fervid.analysis.in_process_pool import InProcessPool
from fervid.analysis.results_store import ResultsStore
from fervid.analysis.runner import VideoJob, analyse_videos
from fervid.analysis.segments import AnalysisOptions, split
from fervid.analysis.video_file import open_video, probe_video
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.face_detector import HaarFaceDetector
from fervid.models.recognizer import Recognizer
from fervid.models.smoothing import ExpressionSmoother

ONE_SEGMENT = AnalysisOptions(segment_s=60.0)
TWO_SEGMENTS = AnalysisOptions(segment_s=4.6)  # 138 frames: [0, 138) and [138, 275)
THREE_SEGMENTS = AnalysisOptions(segment_s=3.1)  # 93 frames: three segments


@pytest.fixture(scope="module")
def pool(classifier):
    return InProcessPool(Recognizer(classifier, HaarFaceDetector()))


@pytest.fixture(scope="module")
def sample():
    return probe_video(SAMPLE_CLIP)


def job(folder, info, options) -> VideoJob:
    return VideoJob(info, ResultsStore.open(folder, info, options.settings()), options)


def stored(folder) -> FaceRows:
    return FaceRows.concat(list(read_rows(folder / "faces.csv")))


def analysed(tmp_path_factory, pool, info, options, name):
    folder = tmp_path_factory.mktemp(name)
    progress = []
    [outcome] = analyse_videos([job(folder, info, options)], pool, lambda video, n: progress.append((video, n)))
    return folder, outcome, progress


@pytest.fixture(scope="module")
def one_pass(tmp_path_factory, pool, sample):
    return analysed(tmp_path_factory, pool, sample, ONE_SEGMENT, "one")


@pytest.fixture(scope="module")
def two_segments(tmp_path_factory, pool, sample):
    return analysed(tmp_path_factory, pool, sample, TWO_SEGMENTS, "two")


def test_a_video_is_analysed_into_its_folder_with_progress_and_speed(one_pass, sample):
    folder, outcome, progress = one_pass
    assert outcome.error is None and not outcome.skipped and outcome.store.complete
    assert outcome.frames_analysed == 275 and sum(n for _, n in progress) == 275
    assert {video for video, _ in progress} == {str(SAMPLE_CLIP)}
    assert outcome.wall_s > 0 and outcome.frames_per_s == pytest.approx(275 / outcome.wall_s)
    assert outcome.x_real_time == pytest.approx(275 / sample.fps / outcome.wall_s)
    speed = outcome.summary["video"]["speed"]
    assert speed["workers"] == 1 and 0 < speed["full_scan_share"] < 1 and 0 < speed["scanned_share"] < 1
    rows = stored(folder)
    assert len(rows) >= 100 and rows.track.min() == 1


def test_two_segments_give_the_rows_of_one_pass(one_pass, two_segments):
    one, two = stored(one_pass[0]), stored(two_segments[0])
    assert two_segments[1].frames_analysed == 275
    # The first segment is the one pass's start, exactly.
    first = one.frame < 138
    assert np.array_equal(one.take(first).boxes, two.take(two.frame < 138).boxes)
    assert np.array_equal(one.take(first).track, two.take(two.frame < 138).track)
    assert np.allclose(one.take(first).smoothed, two.take(two.frame < 138).smoothed, atol=2e-6)
    # After the border the new tracker plans its own scans, so a few boxes differ; the performer keeps her id.
    assert abs(len(two) - len(one)) <= 0.05 * len(one)
    after_one, after_two = one.take(~first), two.take(two.frame >= 138)
    same = {(f, tuple(b)): t for f, b, t in zip(after_one.frame, after_one.boxes.tolist(), after_one.track)}
    pairs = [(same[(f, tuple(b))], t) for f, b, t in zip(after_two.frame, after_two.boxes.tolist(), after_two.track)
             if (f, tuple(b)) in same]
    assert len(pairs) >= 0.5 * len(after_two)
    assert sum(a == b for a, b in pairs) >= 0.9 * len(pairs), "tracks continue across the border under their ids"


def test_smoothing_runs_over_whole_tracks_across_segment_borders(two_segments):
    rows = stored(two_segments[0])
    smoother = ExpressionSmoother(TWO_SEGMENTS.tracking.smoothing_half_life_s)
    expected = np.concatenate([smoother.update(rows.time_s[rows.frame == f][0], rows.track[rows.frame == f],
                                               rows.probabilities[rows.frame == f]) for f in np.unique(rows.frame)])
    assert np.allclose(rows.smoothed, expected, atol=1e-4), "faces.csv rounds times to 0.1 ms"
    crossing = rows.track[rows.frame >= 138][0]
    assert crossing in rows.track[rows.frame < 138], "a track does cross the border"


class CompletionOrderReversed(InProcessPool):
    """Real segments, whose results come back last first (as a slow early segment would)."""

    def run(self, segments, on_frames=None):
        yield from reversed(list(super().run(segments, on_frames)))


def test_results_arriving_out_of_order_are_committed_in_order(tmp_path, pool, sample, two_segments):
    reversed_pool = CompletionOrderReversed(pool.recognizer)
    folder = tmp_path / "out"
    [outcome] = analyse_videos([job(folder, sample, TWO_SEGMENTS)], reversed_pool)
    assert outcome.error is None
    assert (folder / "faces.csv").read_bytes() == (two_segments[0] / "faces.csv").read_bytes()


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_after_its_last_committed_segment(tmp_path, pool, sample, tmp_path_factory):
    full_folder, full, _ = analysed(tmp_path_factory, pool, sample, THREE_SEGMENTS, "three")
    segments = split(sample, THREE_SEGMENTS)
    folder = tmp_path / "out"
    seen = []

    def stop_in_second_segment(video, n):  # Ctrl-C while the second segment is being analysed
        seen.append(n)
        if sum(seen) > segments[0].stop + 20:
            raise Interrupted

    with pytest.raises(Interrupted):
        analyse_videos([job(folder, sample, THREE_SEGMENTS)], pool, stop_in_second_segment)
    store = ResultsStore.open(folder, sample, THREE_SEGMENTS.settings())
    assert (store.segments_done, store.complete) == (1, False)

    [outcome] = analyse_videos([VideoJob(sample, store, THREE_SEGMENTS)], pool)
    assert outcome.error is None and outcome.frames_analysed == 275 - segments[0].stop
    resumed, whole = stored(folder), stored(full_folder)
    assert np.array_equal(resumed.frame, whole.frame) and np.array_equal(resumed.track, whole.track)
    assert np.allclose(resumed.probabilities, whole.probabilities, atol=2e-6)
    # The smoother is rebuilt from the last seconds' rows: within 2**-5 of the uninterrupted averages.
    difference = np.abs(resumed.smoothed - whole.smoothed).max(axis=1)
    assert difference.max() <= 1 / 32


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    """The sample clip's first 120 frames as MJPG at 25 fps, cut in half: it ends near frame 60."""
    path = tmp_path_factory.mktemp("cut") / "clip.avi"
    cap = open_video(SAMPLE_CLIP)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 360))
    for _ in range(120):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_a_truncated_video_ends_alone_and_the_others_finish(tmp_path, pool, sample, truncated, one_pass):
    cut = probe_video(truncated)
    options = AnalysisOptions(segment_s=2.0)  # 50 frames at 25 fps: the cut lies in the second segment
    jobs = [job(tmp_path / "cut", cut, options), job(tmp_path / "whole", sample, ONE_SEGMENT)]
    broken, whole = analyse_videos(jobs, pool)
    assert broken.summary is None and "ends at frame" in broken.error and str(truncated) in broken.error
    assert broken.store.segments_done == 1 and not broken.store.complete, "its committed segment stays"
    assert broken.frames_analysed == 50
    assert whole.error is None and whole.store.complete
    assert (tmp_path / "whole" / "faces.csv").read_bytes() == (one_pass[0] / "faces.csv").read_bytes()


def test_finished_results_are_skipped(pool, sample, one_pass):
    folder, first, _ = one_pass
    [again] = analyse_videos([job(folder, sample, ONE_SEGMENT)], pool)
    assert again.skipped and again.error is None and again.frames_analysed == 0
    assert again.summary == first.summary
