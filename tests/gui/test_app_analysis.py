"""The desktop app's Analyze Video… with the real model on the sample clip: progress in the window,
the timeline when done, bad input in the status line, a finished folder shown at once, Stop and resume.

One recogniser (the session's classifier) is shared by every window of this module, as the app
shares one between upload, camera and analysis.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fervid.analysis.faces_csv import read_rows
from fervid.analysis.face_rows import FaceRows
from fervid.analysis.results_store import MANIFEST
from fervid.gui.app import MainWindow
from tests.conftest import SAMPLE_CLIP, TWO_PEOPLE

WAIT_MS = 180_000
"""Generous: the sample clip takes seconds to analyse, and the test box is shared."""
SAMPLE_FRAMES = 275
SHORT_SEGMENT_S = 2.0
"""60 frames of the sample clip: five segments, so Stop lands well before the end."""



def analyse(qtbot, window: MainWindow, video: Path, out: Path | None = None, **options) -> list[int]:
    """Run Analyze Video… to its end; the progress bar's values on the way."""
    values: list[int] = []
    window.progress_bar.valueChanged.connect(values.append)
    try:
        with qtbot.waitSignal(window.analysis_finished, timeout=WAIT_MS):
            assert window.analyze_video(video, out, **options)
    finally:
        window.progress_bar.valueChanged.disconnect(values.append)
    return values


def assert_idle(window: MainWindow) -> None:
    assert window.mode == "idle" and window.analysis is None
    assert window.analyze_button.isEnabled() and window.upload_button.isEnabled()
    assert window.start_button.isEnabled() and not window.stop_button.isEnabled()
    assert not window.progress_bar.isVisible()


def committed_segments(folder: Path) -> int:
    return json.loads((folder / MANIFEST).read_text())["segments_done"]


def stored_rows(folder: Path) -> FaceRows:
    return FaceRows.concat(list(read_rows(folder / "faces.csv")))


def write_video(path: Path, frames: int = 12) -> Path:
    """A short real video of noise (no faces), for a folder that holds another video's results."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (120, 160, 3), np.uint8))
    writer.release()
    return path


def test_analysing_the_sample_clip_moves_a_progress_bar_then_shows_the_timeline(qtbot, window, tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copy(SAMPLE_CLIP, video)
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    values: list[int] = []
    window.progress_bar.valueChanged.connect(values.append)

    with qtbot.waitSignal(window.analysis_finished, timeout=WAIT_MS):
        assert window.analyze_video(video)  # no folder given: <video name>_fervid beside it
        # Off the GUI thread: the job runs while this method has already returned.
        assert window.analysis is not None and window.analysis.isRunning()
        assert window.mode == "analysing" and window.progress_bar.isVisible()
        assert window.stop_button.isEnabled()
        assert not any(button.isEnabled() for button in (window.analyze_button, window.upload_button,
                                                         window.start_button, window.save_button))

    out = tmp_path / "clip_fervid"
    assert all((out / name).is_file() for name in ("faces.csv", "summary.json", "timeline.png"))
    summary = json.loads((out / "summary.json").read_text())["video"]
    assert summary["frames_analysed"] == SAMPLE_FRAMES and summary["faces"] > 0
    assert values[-1] == SAMPLE_FRAMES and len(values) >= 5, values
    assert values == sorted(values) and values[0] < SAMPLE_FRAMES // 2, "the bar moved forward as frames went"
    assert any("frames/s" in message for message in messages), messages

    status = window.status_label.text()
    assert not window.status_is_error
    assert f"{summary['faces']} faces in {summary['tracks']} tracks" in status and str(out) in status
    assert "frames/s" in status
    timeline = cv2.imread(str(out / "timeline.png"))
    assert np.array_equal(window.annotated, timeline), "the timeline is on screen"
    shown = window.image_view.full_pixmap()
    assert (shown.width(), shown.height()) == (timeline.shape[1], timeline.shape[0])
    assert window.face_table.rowCount() == 0
    assert_idle(window)

    saved = window.save_annotated(tmp_path / "saved")
    assert saved is not None and np.array_equal(cv2.imread(str(saved)), timeline), "Save… writes the timeline"


@pytest.mark.parametrize("case", ["text named .mp4", "folder is a file", "another video's folder"])
def test_bad_input_is_one_red_line_and_the_app_stays_usable(qtbot, window, tmp_path, case):
    video, out = SAMPLE_CLIP, tmp_path / "results"
    if case == "text named .mp4":
        video = tmp_path / "holiday.mp4"
        video.write_text("these are not the frames you are looking for\n")
        out, expected = None, ("holiday.mp4", "not a video")
    elif case == "folder is a file":
        out.write_text("a file where the results folder should be\n")
        expected = (str(out), "is a file")
    else:
        analyse(qtbot, window, write_video(tmp_path / "noise.avi"), out)
        assert not window.status_is_error and (out / "summary.json").is_file()
        expected = (str(out), "another video")

    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as blocker:
        assert window.analyze_video(video, out)
    qtbot.waitUntil(lambda: window.mode == "idle", timeout=WAIT_MS)
    message = blocker.args[0]
    assert all(part in message for part in expected) and "\n" not in message, message
    assert window.status_is_error and window.status_label.text() == message
    assert_idle(window)
    if case == "text named .mp4":
        assert not (tmp_path / "holiday_fervid").exists(), "nothing written for a file that is not a video"

    with qtbot.waitSignal(window.annotation_shown, timeout=WAIT_MS):  # still usable
        window.upload_image(TWO_PEOPLE)
    assert window.face_table.rowCount() == 2


def test_a_video_already_analysed_in_the_folder_is_shown_at_once(qtbot, window, tmp_path):
    out = tmp_path / "results"
    analyse(qtbot, window, SAMPLE_CLIP, out)
    written = {name: (out / name).stat().st_mtime_ns for name in ("faces.csv", "summary.json", "timeline.png")}
    window.annotated = None  # so that showing the timeline again is seen

    values = analyse(qtbot, window, SAMPLE_CLIP, out)

    assert values == [], "nothing analysed: the bar never counted"
    assert {name: (out / name).stat().st_mtime_ns for name in written} == written, "no report rewritten"
    summary = json.loads((out / "summary.json").read_text())["video"]
    status = window.status_label.text()
    assert "already analysed" in status and str(out) in status and f"{summary['faces']} faces" in status
    assert not window.status_is_error
    assert np.array_equal(window.annotated, cv2.imread(str(out / "timeline.png")))
    assert_idle(window)


def test_stop_keeps_whole_committed_segments_and_analysing_again_resumes(qtbot, window, tmp_path):
    out = tmp_path / "results"
    segment_frames = round(SHORT_SEGMENT_S * 29.97)

    def stop_once_counting(value: int) -> None:
        if value > 0 and window.mode == "analysing":
            window.stop_button.click()

    window.progress_bar.valueChanged.connect(stop_once_counting)
    stopped_values = analyse(qtbot, window, SAMPLE_CLIP, out, segment_s=SHORT_SEGMENT_S)
    window.progress_bar.valueChanged.disconnect(stop_once_counting)

    done = committed_segments(out)
    assert 1 <= done < 5, f"stopped after its current segment, not at once nor at the end ({done} of 5)"
    assert stopped_values[-1] < SAMPLE_FRAMES
    status = window.status_label.text()
    assert not window.status_is_error
    assert f"{done} of 5 segments" in status and "resumes" in status and str(out) in status
    assert not (out / "summary.json").exists() and not (out / "timeline.png").exists()
    kept_bytes = (out / "faces.csv").read_bytes()
    assert kept_bytes.endswith(b"\n"), "whole rows only"
    kept = stored_rows(out)
    assert len(kept) and kept.frame.max() < done * segment_frames, "only the committed segments' rows"
    assert_idle(window)

    values = analyse(qtbot, window, SAMPLE_CLIP, out, segment_s=SHORT_SEGMENT_S)

    assert values[0] >= done * segment_frames, "resumed after the committed frames, not from 0"
    assert values[-1] == SAMPLE_FRAMES
    summary = json.loads((out / "summary.json").read_text())["video"]
    assert summary["frames_analysed"] == SAMPLE_FRAMES
    assert f"{summary['faces']} faces" in window.status_label.text() and not window.status_is_error
    assert (out / "faces.csv").read_bytes().startswith(kept_bytes), "the kept rows stay as they were"
    rows = stored_rows(out)
    assert rows.frame.max() >= (SAMPLE_FRAMES // segment_frames) * segment_frames
    assert (np.diff(rows.frame) >= 0).all()
    assert np.array_equal(window.annotated, cv2.imread(str(out / "timeline.png")))


def test_closing_the_window_mid_analysis_ends_it_after_its_segment(qtbot, shared, tmp_path):
    win = MainWindow(recognizer=shared)
    qtbot.addWidget(win)
    win.show()
    out = tmp_path / "results"
    assert win.analyze_video(SAMPLE_CLIP, out, segment_s=SHORT_SEGMENT_S)
    job = win.analysis
    qtbot.waitUntil(lambda: win.progress_bar.value() > 0, timeout=WAIT_MS)

    win.close()

    assert job.isFinished(), "no analysis thread outlives its window"
    assert 1 <= committed_segments(out) < 5, "ended after its current segment, which stays committed"
