"""timeline.png (analysis.timeline): a real PNG of the expected size whose lanes show each track's
class colours where and when the track is, the longest tracks only, and a plot for no faces."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.timeline import (WIDTH_PX, longest_tracks, plot_timeline, timeline_rows, timeline_size,
                                     timeline_title)
from fervid.analysis.video_file import probe_video
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.annotate import EMOTION_COLOURS_BGR
from tests.conftest import REPO
from tests.helpers.face_rows_factory import in_frame_order, track_rows

MINOR_STRIPE_MAX_PX = 5
"""A class at 0.05 of a track's smoothed rows is a stripe of 0.05 of a 36 px lane: a region of this
height at most (a track of that class would fill most of its lane)."""


@pytest.fixture(scope="module")
def video():
    return probe_video(SAMPLE_CLIP)


def lane(image: np.ndarray, emotion: str) -> tuple[int, int, int, int, int] | None:
    """(x, y, width, height, area) of the largest region painted exactly in ``emotion``'s colour."""
    mask = np.all(image == np.array(EMOTION_COLOURS_BGR[emotion], np.uint8), axis=2).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        return None
    return tuple(int(v) for v in stats[1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])])


def painted(image: np.ndarray, emotion: str) -> int:
    return int(np.all(image == np.array(EMOTION_COLOURS_BGR[emotion], np.uint8), axis=2).sum())


def test_a_real_png_of_the_expected_size(tmp_path, video):
    rows = in_frame_order(track_rows(1, range(0, 120), video.fps, "happy"),
                          track_rows(2, range(150, 275), video.fps, "sad"))
    dest = tmp_path / "timeline.png"
    plot_timeline(rows, video, dest)
    assert dest.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(dest))
    assert image.shape == (timeline_size(2)[1], timeline_size(2)[0], 3) == (260, 1200, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]  # no partial file left


def test_each_track_paints_its_class_colour_in_its_lane_when_it_is_seen(tmp_path, video):
    """Track 1 happy on frames 0..119, track 2 sad on 150..209: happy's lane lies above sad's (the
    earlier track on top) and to the left of it; x is time, from 0 to the video's end (the space
    right of sad's lane is the rest of the video: frames 210..274)."""
    rows = in_frame_order(track_rows(1, range(0, 120), video.fps, "happy"),
                          track_rows(2, range(150, 210), video.fps, "sad"))
    plot_timeline(rows, video, tmp_path / "timeline.png")
    image = cv2.imread(str(tmp_path / "timeline.png"))
    hx, hy, hw, hh, _ = lane(image, "happy")
    sx, sy, sw, sh, _ = lane(image, "sad")
    assert hh > 20 and sh > 20 and hw > 300
    assert hy + hh <= sy  # happy's lane above sad's
    assert hx + hw <= sx  # and over earlier times
    px_per_frame = hw / 120
    assert sw == pytest.approx(60 * px_per_frame, rel=0.03)
    assert sx - hx == pytest.approx(150 * px_per_frame, rel=0.03)
    axis_end = hx + video.frames * px_per_frame
    assert axis_end < WIDTH_PX - 5 and (image[sy + 5, sx + sw + 2:int(axis_end) - 2] == 255).all()
    assert lane(image, "fear")[3] <= MINOR_STRIPE_MAX_PX  # nobody was afraid: fear is a thin stripe only


def test_a_track_not_seen_for_a_while_leaves_its_lane_blank_there(tmp_path, video):
    """Track 3 seen on every 2nd frame of 0..59 and of 200..259: along its lane, two blocks of 60
    frames each with 140 frames of nothing between."""
    rows = track_rows(3, [*range(0, 60, 2), *range(200, 260, 2)], video.fps, "neutral")
    plot_timeline(rows, video, tmp_path / "timeline.png")
    image = cv2.imread(str(tmp_path / "timeline.png"))
    _, y, _, h, _ = lane(image, "neutral")
    along = np.all(image[y + h // 2] == np.array(EMOTION_COLOURS_BGR["neutral"], np.uint8), axis=1)
    edges = np.flatnonzero(np.diff(along.astype(np.int8)))  # start-1, end-1 of each block
    assert len(edges) == 4
    first, gap, second = edges[1] - edges[0], edges[2] - edges[1], edges[3] - edges[2]
    assert second == pytest.approx(first, abs=4)  # the first starts under the axis line
    assert gap == pytest.approx(140 / 60 * first, rel=0.03)


def test_only_the_longest_tracks_get_lanes(tmp_path, video):
    rows = in_frame_order(track_rows(1, range(0, 200), video.fps, "happy"),
                          track_rows(2, range(0, 20), video.fps, "fear"),
                          track_rows(3, range(50, 250), video.fps, "sad"),
                          track_rows(4, range(100, 110), video.fps, "angry"))
    plot_timeline(rows, video, tmp_path / "timeline.png", max_tracks=2)
    image = cv2.imread(str(tmp_path / "timeline.png"))
    assert image.shape[0] == timeline_size(2)[1]
    assert lane(image, "happy")[3] > 20 and lane(image, "sad")[3] > 20
    assert lane(image, "fear")[3] <= MINOR_STRIPE_MAX_PX and lane(image, "angry")[3] <= MINOR_STRIPE_MAX_PX


def test_longest_tracks_and_the_title_that_says_how_many_are_left_out():
    assert longest_tracks(np.array([4, 7, 9, 11]), np.array([10, 50, 10, 3]), 2) == [7, 4]
    assert timeline_title("clip.mp4", 12, 30).endswith("; the 12 longest of 30 tracks, 18 left out")
    assert timeline_title("clip.mp4", 3, 3) == "clip.mp4: smoothed expression of each face track over time"


def test_a_video_without_faces_gets_a_plot_that_says_so(tmp_path, video):
    plot_timeline(FaceRows.empty(), video, tmp_path / "timeline.png")
    image = cv2.imread(str(tmp_path / "timeline.png"))
    assert image.shape == (timeline_size(0)[1], timeline_size(0)[0], 3) == (215, 1200, 3)
    assert all(painted(image, emotion) < 400 for emotion in EMOTION_COLOURS_BGR)  # the legend's patches only
    assert (image < 100).any()  # the message and the axis are drawn


def test_thinning_keeps_at_most_the_asked_points_per_track_and_only_the_asked_tracks(video):
    rows = in_frame_order(track_rows(1, range(0, 275), video.fps, "happy"),
                          track_rows(2, range(0, 275, 6), video.fps, "sad"),
                          track_rows(3, range(0, 275), video.fps, "fear"))
    chunks = [rows.take(slice(i, i + 100)) for i in range(0, len(rows), 100)]
    thin = timeline_rows(chunks, [1, 2], video.duration_s, points=50)
    assert set(thin.track.tolist()) == {1, 2}
    one = thin.take(thin.track == 1)
    assert 45 <= len(one) <= 50 and one.frame[0] == 0 and (np.diff(one.frame) > 0).all()
    assert len(thin.take(thin.track == 2)) == 46  # one row every 6 frames, slices of 5.5: all 46 stay


def test_plotting_leaves_pyplot_alone(tmp_path):
    code = ("import sys; from pathlib import Path; from fervid.analysis.face_rows import FaceRows; "
            "from fervid.analysis.timeline import plot_timeline; from fervid.analysis.video_file import probe_video; "
            "from fervid.media.samples import SAMPLE_CLIP; "
            f"plot_timeline(FaceRows.empty(), probe_video(SAMPLE_CLIP), Path({str(tmp_path / 't.png')!r})); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
