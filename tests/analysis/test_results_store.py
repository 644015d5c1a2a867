"""The output folder (analysis.results_store): whole committed rows only, resume after an
interruption (a partial line, a killed writer), refusal of another video's or other settings'
folder in one line, --force that removes only fervid's files, and the finished reports."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import header_line, read_all
from fervid.analysis.results_store import MANIFEST, ResultsStore
from fervid.analysis.timeline import timeline_size
from fervid.analysis.video_file import probe_video
from fervid.errors import AnalysisOutputError
from fervid.media.samples import SAMPLE_CLIP
from tests.conftest import REPO
from tests.helpers.face_rows_factory import in_frame_order, track_rows

SETTINGS = {"every": 2, "segment_frames": 100, "overlap_frames": 10, "model": "sha256:abc", "tracking": {"margin": 0.5}}
SPEED = {"frames_per_s": 100.0, "x_real_time": 3.3, "wall_s": 2.75, "workers": 2}


@pytest.fixture(scope="module")
def video():
    return probe_video(SAMPLE_CLIP)


def segment(k: int, fps: float) -> FaceRows:
    """Segment k (frames 100k .. 100k+98, every 2nd): track 2k+1 happy and track 2k+2 sad."""
    frames = range(100 * k, 100 * k + 100, 2)
    return in_frame_order(track_rows(2 * k + 1, frames, fps, "happy", seed=k),
                          track_rows(2 * k + 2, frames, fps, "sad", box=(300, 50, 80, 80), seed=k + 10))


def append_segments(store: ResultsStore, count: int) -> None:
    for k in range(store.segments_done, store.segments_done + count):
        store.append(k, segment(k, store.video.fps), frames_analysed=50 * (k + 1), next_track_id=2 * k + 3)


def test_a_new_folder_and_its_parents_are_created_empty(tmp_path, video):
    out = tmp_path / "a" / "b"
    store = ResultsStore.open(out, video, SETTINGS)
    assert (store.complete, store.segments_done, store.next_track_id, store.frames_analysed) == (False, 0, 1, 0)
    assert store.faces_csv == out / "faces.csv" and store.faces_csv.read_text() == header_line()
    assert (store.summary_json, store.timeline_png, store.annotated_mp4) == (
        out / "summary.json", out / "timeline.png", out / "annotated.mp4")
    assert (out / MANIFEST).exists()


def test_appended_segments_are_there_after_reopening(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    append_segments(store, 2)
    again = ResultsStore.open(tmp_path, video, SETTINGS)
    assert (again.complete, again.segments_done, again.next_track_id, again.frames_analysed) == (False, 2, 5, 100)
    rows = read_all(again.faces_csv)
    assert len(rows) == 200
    np.testing.assert_array_equal(rows.frame, FaceRows.concat([segment(0, video.fps), segment(1, video.fps)]).frame)
    append_segments(again, 1)  # and it goes on with segment 2
    assert len(read_all(again.faces_csv)) == 300


def test_rows_from_gives_the_committed_overlap(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    append_segments(store, 2)
    overlap = ResultsStore.open(tmp_path, video, SETTINGS).rows_from(190)
    np.testing.assert_array_equal(overlap.frame, [190, 190, 192, 192, 194, 194, 196, 196, 198, 198])
    np.testing.assert_array_equal(overlap.track, [3, 4] * 5)
    assert len(store.rows_from(1000)) == 0


def test_a_partial_line_after_the_committed_rows_is_dropped_on_open(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    append_segments(store, 1)
    committed = store.faces_csv.read_bytes()
    with store.faces_csv.open("ab") as f:  # an interrupted segment: some whole lines, then half of one
        f.write(committed.splitlines(keepends=True)[1] + b"102,3.40")
    again = ResultsStore.open(tmp_path, video, SETTINGS)
    assert again.faces_csv.read_bytes() == committed
    assert again.segments_done == 1 and len(read_all(again.faces_csv)) == 100


CHILD = """
import sys
from pathlib import Path
from fervid.analysis.video_file import probe_video
from fervid.analysis.results_store import ResultsStore
from fervid.media.samples import SAMPLE_CLIP
from tests.helpers.face_rows_factory import track_rows
video = probe_video(SAMPLE_CLIP)
store = ResultsStore.open(Path(sys.argv[1]), video, {"every": 1})
print(store.segments_done, flush=True)
for k in range(store.segments_done, 10_000):
    rows = track_rows(k + 1, range(20_000 * k, 20_000 * (k + 1)), video.fps, "happy")
    store.append(k, rows, frames_analysed=20_000 * (k + 1), next_track_id=k + 2)
    print(k, flush=True)
"""


@pytest.mark.slow
def test_a_writer_killed_mid_run_leaves_only_whole_committed_segments(tmp_path, video):
    """Four real writers, each killed with SIGKILL a little after its first commit (at some point of
    formatting, writing or committing the next segment): each rerun continues where the last commit
    was, and only whole committed segments are ever in faces.csv."""
    for delay in (0.0, 0.05, 0.11, 0.17):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                                 text=True)
        try:
            resumed_at = int(child.stdout.readline())
            assert child.stdout.readline(), "the writer died before its first commit"
            time.sleep(delay)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            child.stdout.close()
        store = ResultsStore.open(tmp_path, video, {"every": 1})
        assert store.segments_done > resumed_at, "the writer committed nothing before it was killed"
        rows = read_all(store.faces_csv)
        assert len(rows) == 20_000 * store.segments_done
        np.testing.assert_array_equal(rows.frame, np.arange(20_000 * store.segments_done))
        np.testing.assert_array_equal(np.unique(rows.track), np.arange(1, store.segments_done + 1))
        assert store.frames_analysed == 20_000 * store.segments_done
        assert store.next_track_id == store.segments_done + 1


def test_another_videos_folder_is_refused_in_one_line(tmp_path, video):
    ResultsStore.open(tmp_path, video, SETTINGS)
    other = replace(video, path="/videos/other.mp4", fingerprint="0" * 64)
    with pytest.raises(AnalysisOutputError) as error:
        ResultsStore.open(tmp_path, other, SETTINGS)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path}: holds the results of another video ({SAMPLE_CLIP})")
    assert "fervid analyze --force" in message and "choose another folder" in message


def test_the_same_video_moved_elsewhere_is_the_same_video(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    append_segments(store, 1)
    moved = ResultsStore.open(tmp_path, replace(video, path="/elsewhere/clip.mp4"), SETTINGS)
    assert moved.segments_done == 1


def test_other_settings_are_refused_naming_what_differs(tmp_path, video):
    ResultsStore.open(tmp_path, video, SETTINGS)
    with pytest.raises(AnalysisOutputError, match=r"made with other settings \(every, tracking differ\); "
                                                  r"replace them \(fervid analyze --force\) or choose another folder$"):
        ResultsStore.open(tmp_path, video, SETTINGS | {"every": 3, "tracking": {"margin": 0.4}})


def test_force_removes_only_fervids_files(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    append_segments(store, 1)
    store.finish(SPEED)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "annotated.mp4").write_bytes(b"old")
    other = replace(video, path="/videos/other.mp4", fingerprint="0" * 64)
    fresh = ResultsStore.open(tmp_path, other, SETTINGS, force=True)
    assert (fresh.complete, fresh.segments_done) == (False, 0)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "faces.csv", "notes.txt"]
    assert json.loads((tmp_path / MANIFEST).read_text())["video"]["path"] == "/videos/other.mp4"


def test_foreign_files_are_kept_but_a_report_without_manifest_is_refused(tmp_path, video):
    (tmp_path / "holiday.jpg").write_bytes(b"x")
    ResultsStore.open(tmp_path, video, SETTINGS)  # a folder with other files is fine
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "faces.csv").write_text("name,age\n")
    with pytest.raises(AnalysisOutputError, match=f"^{stranger}: holds faces.csv but no {MANIFEST}"):
        ResultsStore.open(stranger, video, SETTINGS)
    assert (stranger / "faces.csv").read_text() == "name,age\n"


def test_a_path_that_is_a_file_is_refused(tmp_path, video):
    path = tmp_path / "results"
    path.write_text("x")
    with pytest.raises(AnalysisOutputError, match="is a file, not a folder"):
        ResultsStore.open(path, video, SETTINGS)
    with pytest.raises(AnalysisOutputError, match="cannot write the results there"):
        ResultsStore.open(path / "below", video, SETTINGS)


def test_an_unwritable_folder_is_refused(tmp_path, video):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        with pytest.raises(AnalysisOutputError, match=f"^{locked}: cannot write the results there"):
            ResultsStore.open(locked, video, SETTINGS)
        with pytest.raises(AnalysisOutputError, match=f"^{locked / 'sub'}: cannot write the results there"):
            ResultsStore.open(locked / "sub", video, SETTINGS)
    finally:
        locked.chmod(0o700)


def test_finish_marks_the_results_complete(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    append_segments(store, 2)
    summary = store.finish(SPEED)
    assert store.complete and ResultsStore.open(tmp_path, video, SETTINGS).complete
    assert json.loads(store.summary_json.read_text()) == summary
    assert summary["video"]["faces"] == 200 and summary["video"]["frames_analysed"] == 100
    assert summary["video"]["every"] == 2 and summary["video"]["speed"] == SPEED
    timeline = cv2.imread(str(store.timeline_png))
    assert timeline.shape[:2] == timeline_size(4)[::-1]  # a lane for each of the 4 tracks
    assert not any(p.name.startswith(".") and "partial" in p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="finished"):
        append_segments(store, 1)


def test_appends_out_of_order_or_with_bad_rows_are_bugs(tmp_path, video):
    store = ResultsStore.open(tmp_path, video, SETTINGS)
    with pytest.raises(ValueError, match="segment 1 appended after 0 committed segments"):
        store.append(1, segment(1, video.fps), 50, 5)
    append_segments(store, 1)
    with pytest.raises(ValueError, match="segment 0 appended after 1"):
        store.append(0, segment(0, video.fps), 100, 5)
    with pytest.raises(ValueError, match="after frame 98"):
        store.append(1, segment(0, video.fps), 100, 5)
    with pytest.raises(ValueError, match="global"):
        store.append(1, segment(1, video.fps), 100, 3)
    with pytest.raises(ValueError, match="cannot shrink"):
        store.append(1, segment(1, video.fps), 20, 5)
    assert store.segments_done == 1 and len(read_all(store.faces_csv)) == 100
