"""summary.json's content (analysis.summary): the CSV's rows add up to it, per track and per video,
whether the rows come in one chunk or many."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import format_rows, header_line, read_all, read_rows
from fervid.analysis.summary import summarise
from fervid.analysis.video_file import probe_video
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.labels import EMOTIONS
from tests.helpers.face_rows_factory import in_frame_order, track_rows

SPEED = {"frames_per_s": 120.5, "x_real_time": 4.02, "wall_s": 2.28, "workers": 2}


@pytest.fixture(scope="module")
def video():
    return probe_video(SAMPLE_CLIP)


@pytest.fixture
def faces_csv(tmp_path, video):
    """Three tracks on the sample clip's frames (every 2nd frame analysed): track 4 happy on frames
    0..98, then sad on 100..118; track 7 neutral on 50..148; track 9 seen once, on frame 200."""
    fps = video.fps
    rows = in_frame_order(track_rows(4, range(0, 100, 2), fps, "happy"),
                          track_rows(4, range(100, 120, 2), fps, "sad", seed=1),
                          track_rows(7, range(50, 150, 2), fps, "neutral", seed=2),
                          track_rows(9, [200], fps, "surprise", seed=3))
    path = tmp_path / "faces.csv"
    path.write_text(header_line() + format_rows(rows))
    return path


def test_the_csv_rows_add_up_to_the_summary(faces_csv, video):
    rows = read_all(faces_csv)
    summary = summarise(read_rows(faces_csv, chunk_rows=7), video, 138, 2, SPEED)
    assert summary["video"]["faces"] == len(rows) == 111
    assert summary["video"]["tracks"] == 3
    tracks = {t["id"]: t for t in summary["tracks"]}
    assert sum(t["frames_seen"] for t in tracks.values()) == len(rows)
    for track_id, track in tracks.items():
        own = rows.take(rows.track == track_id)
        assert track["frames_seen"] == len(own)
        assert track["first_s"] == pytest.approx(own.time_s.min(), abs=1e-4)
        assert track["last_s"] == pytest.approx(own.time_s.max(), abs=1e-4)
        assert sum(track["expressions"].values()) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose([track["mean_smoothed"][e] for e in EMOTIONS], own.smoothed.mean(axis=0),
                                   atol=1e-6)
    assert list(tracks) == [4, 7, 9]


def test_dominant_expression_and_shares_of_a_track_that_changes(faces_csv, video):
    track = summarise(read_rows(faces_csv, chunk_rows=7), video, 138, 2, SPEED)["tracks"][0]
    assert track["id"] == 4 and track["frames_seen"] == 60
    assert track["dominant"] == "happy"
    assert track["expressions"]["happy"] == pytest.approx(50 / 60, abs=1e-6)
    assert track["expressions"]["sad"] == pytest.approx(10 / 60, abs=1e-6)
    assert track["first_s"] == 0.0 and track["last_s"] == pytest.approx(118 / video.fps, abs=1e-4)


def test_video_fields_and_shares_over_all_faces(faces_csv, video):
    summary = summarise(read_rows(faces_csv), video, 138, 2, SPEED)
    assert summary["video"] | {"expressions": None} == {
        "path": str(SAMPLE_CLIP), "frames": 275, "frames_analysed": 138, "every": 2,
        "fps": pytest.approx(29.97, abs=0.01), "duration_s": pytest.approx(275 / 29.97, abs=1e-3), "width": 640, "height": 360, "faces": 111, "tracks": 3,
        "expressions": None, "speed": SPEED}
    shares = summary["video"]["expressions"]
    assert shares["happy"] == pytest.approx(50 / 111, abs=1e-6)
    assert shares["neutral"] == pytest.approx(50 / 111, abs=1e-6)
    assert shares["surprise"] == pytest.approx(1 / 111, abs=1e-6)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)


def test_chunk_size_does_not_change_the_summary(faces_csv, video):
    assert (summarise(read_rows(faces_csv, chunk_rows=1), video, 138, 2, SPEED)
            == summarise([read_all(faces_csv)], video, 138, 2, SPEED))


def test_a_video_without_faces_has_an_empty_summary_that_is_strict_json(video):
    summary = summarise([FaceRows.empty()], video, 275, 1, SPEED)
    assert summary["video"]["faces"] == 0 and summary["video"]["tracks"] == 0 and summary["tracks"] == []
    assert set(summary["video"]["expressions"].values()) == {0.0}
    json.dumps(summary, allow_nan=False)


def test_dominant_is_the_class_shown_most_often_not_the_highest_mean(video):
    """6 frames narrowly happy, 4 frames clearly sad: the mean favours sad, the frames favour happy."""
    narrow = np.array([0.1, 0.05, 0.1, 0.3, 0.25, 0.1, 0.1], np.float32)
    clear = np.array([0.02, 0.02, 0.02, 0.0, 0.9, 0.02, 0.02], np.float32)
    smoothed = np.vstack([np.tile(narrow, (6, 1)), np.tile(clear, (4, 1))])
    frame = np.arange(10)
    rows = FaceRows(frame, frame / video.fps, np.ones(10), np.zeros((10, 4)), smoothed, smoothed)
    track = summarise([rows], video, 10, 1, SPEED)["tracks"][0]
    assert track["mean_smoothed"]["sad"] > track["mean_smoothed"]["happy"]
    assert track["dominant"] == "happy"
    assert track["expressions"]["happy"] == pytest.approx(0.6) and track["expressions"]["sad"] == pytest.approx(0.4)
