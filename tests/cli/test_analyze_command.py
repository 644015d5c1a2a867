"""``fervid analyze`` as a user runs it: the real command on real videos, its folders, its errors, resuming."""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fervid.models.labels import EMOTIONS
from tests.conftest import REPO, SAMPLE_CLIP, run_fervid
from tests.helpers.video_frames import read_frames

pytestmark = pytest.mark.slow

CLIP_FRAMES = 275


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("fervid analyze: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_avi(path: Path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(frames):
        writer.write(np.full((240, 320, 3), (i * 5) % 256, np.uint8))
    writer.release()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("analysed")
    result = run_fervid("analyze", SAMPLE_CLIP, "--out", out, "--annotate", "--json", timeout=600)
    return result, out / SAMPLE_CLIP.stem


def test_the_sample_clip_gives_every_report_and_one_json_document(analysed):
    result, folder = analysed
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (entry,) = document["videos"]
    assert entry["status"] == "analysed" and Path(entry["out"]) == folder
    assert Path(entry["annotated"]) == folder / "annotated.mp4"
    for name in ("faces.csv", "summary.json", "timeline.png", "annotated.mp4"):
        assert (folder / name).is_file(), name
    assert "frame/s" in result.stderr  # the progress bar went to stderr, never into the JSON
    assert entry["summary"] == json.loads((folder / "summary.json").read_text())


def test_the_csv_rows_add_up_to_the_summary(analysed):
    _, folder = analysed
    rows = csv_rows(folder / "faces.csv")
    summary = json.loads((folder / "summary.json").read_text())
    video, tracks = summary["video"], summary["tracks"]
    assert video["frames"] == CLIP_FRAMES and video["frames_analysed"] == CLIP_FRAMES
    assert video["faces"] == len(rows) > 100
    per_track = Counter(int(row["track"]) for row in rows)
    assert {t["id"]: t["frames_seen"] for t in tracks} == dict(per_track) and video["tracks"] == len(per_track)
    for track in tracks:
        labels = Counter(row["label"] for row in rows if int(row["track"]) == track["id"])
        assert track["dominant"] == labels.most_common(1)[0][0]
        assert sum(track["expressions"].values()) == pytest.approx(1.0, abs=1e-6)
    for row in rows:
        assert row["label"] in EMOTIONS and 0 <= int(row["frame"]) < CLIP_FRAMES
        assert float(row["time_s"]) == pytest.approx(int(row["frame"]) / 29.97, abs=1e-3)
        assert sum(float(row[f"p_{e}"]) for e in EMOTIONS) == pytest.approx(1.0, abs=1e-4)
        smoothed = {e: float(row[f"s_{e}"]) for e in EMOTIONS}
        assert row["label"] == max(smoothed, key=smoothed.get)
    assert video["speed"]["frames_per_s"] > 0 and video["speed"]["x_real_time"] > 0


def test_the_annotated_video_and_the_timeline_are_real(analysed):
    _, folder = analysed
    assert len(read_frames(folder / "annotated.mp4")) == CLIP_FRAMES
    timeline = cv2.imread(str(folder / "timeline.png"))
    assert timeline is not None and timeline.shape[0] > 200 and timeline.shape[1] > 400
    assert len(np.unique(timeline.reshape(-1, 3), axis=0)) > 20  # a plot, not a blank image


def test_a_second_run_finds_the_results_and_analyses_nothing(analysed):
    _, folder = analysed
    result = run_fervid("analyze", SAMPLE_CLIP, "--out", folder.parent, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "already analysed" in result.stderr and "analysing" not in result.stderr
    (entry,) = json.loads(result.stdout)["videos"]
    assert entry["status"] == "already analysed"
    assert entry["summary"] == json.loads((folder / "summary.json").read_text())


def test_another_videos_results_are_refused_and_left_alone(analysed, tmp_path):
    _, folder = analysed
    other = tmp_path / SAMPLE_CLIP.name  # same name, another recording
    write_avi(other, 30)
    before = (folder / "faces.csv").read_bytes()
    result = run_fervid("analyze", other, "--out", folder.parent, timeout=300)
    assert_one_line_error(result, str(folder), "--force")
    assert (folder / "faces.csv").read_bytes() == before


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_text("not a video\n" * 50), "not a video OpenCV can read"),
    (lambda p: write_avi(p, 0), "clip.avi"),
    (lambda p: p.write_bytes(SAMPLE_CLIP.read_bytes()[:100_000]), "not a video OpenCV can read"),
])
def test_what_is_not_a_video_is_one_line_and_exit_2(tmp_path, make, fragment):
    path = tmp_path / ("clip.avi" if fragment == "clip.avi" else "clip.mp4")
    make(path)
    assert_one_line_error(run_fervid("analyze", path, "--out", tmp_path / "out", timeout=300), fragment)


def test_a_video_cut_mid_stream_is_named_with_the_frame_where_it_ends(tmp_path):
    whole = tmp_path / "whole.avi"
    write_avi(whole, 200)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # the header still promises 200 frames
    result = run_fervid("analyze", cut, "--out", tmp_path / "out", "--no-progress", timeout=300)
    assert_one_line_error(result, "cut.avi")


@pytest.mark.parametrize("out_kind, fragment", [("file", "is a file, not a folder"),
                                                ("below_a_file", "cannot be created")])
def test_an_unusable_out_is_one_line(tmp_path, out_kind, fragment):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if out_kind == "file" else blocker / "results"
    assert_one_line_error(run_fervid("analyze", SAMPLE_CLIP, "--out", out, timeout=300), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--every", "0"], "argument --every: must be 1 or more"),
    (["--workers", "x"], "argument --workers: 'x' is not a whole number"),
    (["--segment-s", "nan"], "argument --segment-s"),
    (["--full-scan-every", "0"], "argument --full-scan-every: must be 1 or more"),
])
def test_bad_flags_are_one_line(tmp_path, args, fragment):
    result = run_fervid("analyze", SAMPLE_CLIP, "--out", tmp_path, *args, timeout=120)
    assert result.returncode == 2 and fragment in result.stderr and len(result.stderr.splitlines()) == 1


def test_full_scans_of_every_frame_give_the_detectors_boxes_frame_by_frame(tmp_path):
    """--full-scan-every 1: every frame scanned whole, so faces.csv holds exactly the boxes a plain
    loop of HaarFaceDetector.detect gives (with the same --min-size), and the default plan (which
    scans regions in between) is not asked to match them."""
    from fervid.models.face_detector import HaarFaceDetector

    video = tmp_path / "short.avi"
    frames = read_frames(SAMPLE_CLIP)[80:140]  # the performer walks in: faces come and go
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    result = run_fervid("analyze", video, "--out", tmp_path / "out", "--full-scan-every", "1", "--json",
                        "--no-progress", timeout=600)
    assert result.returncode == 0, result.stderr
    rows = csv_rows(tmp_path / "out" / "short" / "faces.csv")
    found: dict[int, list[tuple[int, ...]]] = {}
    for row in rows:
        found.setdefault(int(row["frame"]), []).append(tuple(int(row[k]) for k in ("x", "y", "w", "h")))
    detector = HaarFaceDetector()
    expected = {}
    for index, frame in enumerate(read_frames(video)):
        boxes = sorted(map(tuple, detector.detect(frame).tolist()))
        if boxes:
            expected[index] = boxes
    assert sum(map(len, expected.values())) > 10, "the test needs faces"
    assert {frame: sorted(boxes) for frame, boxes in found.items()} == expected
    summary = json.loads(result.stdout)["videos"][0]["summary"]
    assert summary["video"]["faces"] == len(rows) and summary["video"]["tracks"] >= 1


def test_missing_paths_and_empty_folders_stop_before_any_work(tmp_path):
    assert_one_line_error(run_fervid("analyze", tmp_path / "gone.mp4", "--out", tmp_path / "out"),
                          "gone.mp4: no such file or folder")
    assert_one_line_error(run_fervid("analyze", tmp_path, "--out", tmp_path / "out"), "a folder without video files")
    assert not (tmp_path / "out").exists()


def test_one_bad_video_does_not_cost_the_others(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_avi(folder / "good.avi", 40)
    (folder / "bad.mp4").write_text("not a video")
    result = run_fervid("analyze", folder, "--out", tmp_path / "out", "--json", "--no-progress", timeout=300)
    assert result.returncode == 2
    entries = {Path(e["video"]).name: e for e in json.loads(result.stdout)["videos"]}
    assert entries["bad.mp4"]["status"] == "error" and "not a video" in entries["bad.mp4"]["error"]
    assert entries["good.avi"]["status"] == "analysed"
    assert entries["good.avi"]["summary"]["video"]["frames_analysed"] == 40
    assert (tmp_path / "out" / "good" / "summary.json").is_file()


def test_an_interrupted_run_leaves_whole_rows_and_the_rerun_continues(tmp_path, analysed):
    """Ctrl-C after the first segments are committed; the same command then finishes the video, and
    its rows are the uninterrupted run's (boxes, tracks, raw rows exactly; smoothed rows rebuilt)."""
    out = tmp_path / "out"
    folder = out / SAMPLE_CLIP.stem
    command = [sys.executable, "-m", "fervid.cli.main", "analyze", str(SAMPLE_CLIP), "--out", str(out),
               "--segment-s", "2", "--no-progress"]
    # Ctrl-C in a terminal: SIGINT at its default. Without preexec_fn the child inherits whatever the test
    # runner has, and CI started as a background job of a script has SIGINT ignored (so had its children).
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    manifest = folder / ".fervid-analysis.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.is_file() and json.loads(manifest.read_text()).get("segments_done", 0) >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    committed = (folder / "faces.csv").read_text()
    assert committed.endswith("\n") and not (folder / "summary.json").exists()
    assert 0 < len(committed.splitlines()) - 1 < len(csv_rows(analysed[1] / "faces.csv"))

    result = run_fervid("analyze", SAMPLE_CLIP, "--out", out, "--segment-s", "2", "--no-progress", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    resumed = csv_rows(folder / "faces.csv")
    assert (folder / "faces.csv").read_text().startswith(committed)
    fresh = tmp_path / "fresh"
    assert run_fervid("analyze", SAMPLE_CLIP, "--out", fresh, "--segment-s", "2", "--no-progress",
                      timeout=600).returncode == 0
    clean = csv_rows(fresh / SAMPLE_CLIP.stem / "faces.csv")
    key = ("frame", "track", "x", "y", "w", "h", *(f"p_{e}" for e in EMOTIONS))
    assert [[row[k] for k in key] for row in resumed] == [[row[k] for k in key] for row in clean]
    for a, b in zip(resumed, clean):
        for e in EMOTIONS:
            assert abs(float(a[f"s_{e}"]) - float(b[f"s_{e}"])) < 0.05


def test_two_ray_workers_on_a_running_cluster_give_the_one_process_results(analysed, ray_session, tmp_path):
    """``--address`` with ``--workers 2``: the command joins the test session's Ray (as it would a
    cluster), its segments run in two actors, and the reports match the one-process run's."""
    _, folder = analysed
    address = ray_session.get_runtime_context().gcs_address
    result = run_fervid("analyze", SAMPLE_CLIP, "--out", tmp_path, "--workers", "2", "--address", address,
                        "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["videos"]
    assert entry["status"] == "analysed"
    ours = tmp_path / SAMPLE_CLIP.stem
    assert csv_rows(ours / "faces.csv") == csv_rows(folder / "faces.csv")
    summary, one_process = (json.loads((f / "summary.json").read_text()) for f in (ours, folder))
    speed, one_speed = summary["video"].pop("speed"), one_process["video"].pop("speed")  # timed: may differ
    assert (speed["workers"], one_speed["workers"]) == (2, 1)
    assert summary == one_process
