"""analyse_segment on real videos: the sample clip (H.264) and MJPG / MPEG-4 files written here."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fervid.analysis.segment_worker import analyse_segment, in_reading_order, open_at
from fervid.analysis.segments import AnalysisOptions, Segment
from fervid.analysis.video_file import probe_video
from fervid.errors import VideoError
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.face_detector import DetectorParams, HaarFaceDetector
from fervid.models.faces import Faces
from fervid.models.preprocessing import crop_faces, to_grey
from fervid.models.recognizer import Recognizer
from fervid.models.stream_tracking import StreamTracking
from tests.helpers.video_frames import read_frames

WRITTEN_FRAMES = 120


@pytest.fixture(scope="module")
def recognizer(classifier):
    return Recognizer(classifier, HaarFaceDetector())


@pytest.fixture(scope="module")
def sample():
    return probe_video(SAMPLE_CLIP)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The sample clip's first frames as MJPG (AVI) and MPEG-4 Part 2 (MP4) files."""
    folder = tmp_path_factory.mktemp("videos")
    frames = read_frames(SAMPLE_CLIP)[:WRITTEN_FRAMES]
    paths = {}
    for fourcc, name in [("MJPG", "clip.avi"), ("mp4v", "clip.mp4")]:
        path = folder / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (640, 360))
        for image in frames:
            writer.write(image)
        writer.release()
        paths[fourcc] = path
    return paths


@pytest.fixture(scope="module")
def truncated(written, tmp_path_factory):
    """The MJPG file cut in half: it opens, its header still promises all frames, reading ends early."""
    path = tmp_path_factory.mktemp("cut") / "cut.avi"
    data = written["MJPG"].read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def segment(info, warmup_start, start, stop, **options) -> Segment:
    return Segment(info, AnalysisOptions(**options), 0, warmup_start, start, stop)


def reference(recognizer, info, first, stop, every=1):
    """The app's steps (``Recognizer.recognise_tracked``), one frame and one classifier call at a
    time from ``first`` (read from the file's start, no seek), boxes in reading order."""
    tracking = StreamTracking(AnalysisOptions().tracking)
    frames = read_frames(info.path)
    out = []
    for index in range(first, stop):
        if index % every == 0:
            ts, grey = index / info.fps, to_grey(frames[index])
            plan = tracking.plan(ts, frames[index])
            boxes = in_reading_order(recognizer.detector.detect_plan(grey, plan))
            faces = Faces(boxes, recognizer.classifier.predict(crop_faces(grey, boxes)))
            out.append((index, tracking.apply(ts, plan, faces)))
    return out


def assert_same_as_reference(rows, reference_frames):
    expected = [(index, faces) for index, faces in reference_frames]
    frames = [index for index, faces in expected for _ in range(len(faces))]
    assert rows.frame.tolist() == frames
    assert np.array_equal(rows.boxes, np.concatenate([f.boxes for _, f in expected]).reshape(-1, 4))
    assert rows.track.tolist() == np.concatenate([f.track_ids for _, f in expected]).tolist()
    assert np.allclose(rows.probabilities, np.concatenate([f.probabilities for _, f in expected]), atol=1e-4)


@pytest.mark.parametrize("codec", ["H264", "MJPG", "mp4v"])
def test_a_seek_lands_on_the_frame_reading_from_the_start_reaches(codec, written, sample):
    path = SAMPLE_CLIP if codec == "H264" else written[codec]
    info = sample if codec == "H264" else probe_video(path)
    frames = read_frames(path)
    for target in (1, 13, 50, 99):
        cap = open_at(segment(info, target, target, target + 1))
        for index in range(target, target + 10):
            ok, image = cap.read()
            assert ok and np.array_equal(image, frames[index]), (codec, target, index)
        cap.release()


def test_a_segment_from_the_start_is_the_apps_frame_by_frame_path_batched(recognizer, sample):
    reported = []
    result = analyse_segment(recognizer, segment(sample, 0, 0, 60, batch_frames=16), reported.append)
    assert (result.index, result.start, result.stop, result.frames_analysed) == (0, 0, 60, 60)
    assert len(result.warmup_rows) == 0 and len(result.rows) >= 10, "the performer is found in many frames"
    assert_same_as_reference(result.rows, reference(recognizer, sample, 0, 60))
    assert np.array_equal(result.rows.smoothed, result.rows.probabilities), "the driver smooths, not the worker"
    assert result.rows.track.min() == 1, "segment-local ids count from 1"
    assert sum(reported) == 60 and max(reported) <= 8
    assert result.scans.frames == 60 and 0 < result.scans.full_scans < 60 and result.scans.scanned_share < 1
    assert result.seconds > 0


def test_warm_up_frames_are_analysed_apart_and_every_skips_frames(recognizer, sample):
    result = analyse_segment(recognizer, segment(sample, 75, 90, 150, every=3, batch_frames=5))
    assert result.frames_analysed == len(range(90, 150, 3))
    assert set(result.warmup_rows.frame.tolist()) <= set(range(75, 90, 3)) and len(result.warmup_rows)
    assert set(result.rows.frame.tolist()) <= set(range(90, 150, 3))
    ref = reference(recognizer, sample, 75, 150, every=3)
    assert_same_as_reference(result.warmup_rows, [(i, f) for i, f in ref if i < 90])
    assert_same_as_reference(result.rows, [(i, f) for i, f in ref if i >= 90])
    assert result.scans.frames == len(range(75, 150, 3))


def test_a_truncated_video_ends_its_segment_with_the_frame_where_it_ended(recognizer, truncated):
    info = probe_video(truncated)
    assert info.frames == WRITTEN_FRAMES, "the header still promises every frame"
    end = len(read_frames(truncated))
    assert 0 < end < WRITTEN_FRAMES
    with pytest.raises(VideoError, match=f"ends at frame {end}, before the {WRITTEN_FRAMES} frames"):
        analyse_segment(recognizer, segment(info, end - 10, end - 5, WRITTEN_FRAMES))
    # A warm-up beyond the end: the seek cannot land there, and grabbing finds the end.
    with pytest.raises(VideoError, match=f"ends at frame {end}, before"):
        analyse_segment(recognizer, segment(info, end + 5, end + 10, WRITTEN_FRAMES))


def test_a_recogniser_with_another_detector_is_refused(recognizer, sample):
    with pytest.raises(ValueError, match="detector"):
        analyse_segment(recognizer, segment(sample, 0, 0, 2, detector=DetectorParams(min_size=80)))


def test_boxes_are_put_in_reading_order():
    boxes = np.array([[300, 10, 50, 50], [20, 90, 40, 40], [20, 30, 60, 60], [20, 30, 50, 50]])
    assert in_reading_order(boxes).tolist() == [[20, 30, 50, 50], [20, 30, 60, 60], [20, 90, 40, 40],
                                                [300, 10, 50, 50]]
    assert in_reading_order(np.zeros((0, 4), np.int32)).shape == (0, 4)
