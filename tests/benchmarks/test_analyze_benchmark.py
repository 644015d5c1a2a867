"""fervid.benchmarks.analyze: the looped-clip writer, and a real --quick run whose JSON adds up.

Speeds are not asserted (a noisy 2-core box); what is checked is that every run measured the
frames it should, that each ratio is the quotient of the numbers it reports, and that the memory
runs analysed videos of the lengths asked for.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import format_rows, header_line
from fervid.analysis.video_file import probe_video
from fervid.benchmarks.analyze import (QUICK_MEMORY_MINUTES, QUICK_NAIVE_FRAMES, TARGET_MEMORY_RATIO,
                                       TARGET_OVER_NAIVE, faces_kept, looped_clip, looped_frame_count,
                                       write_looped)
from fervid.media.samples import SAMPLE_CLIP
from tests.conftest import REPO
from tests.helpers.video_frames import read_frames

CLIP_FRAMES = 275


def benchmark(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fervid.benchmarks.analyze", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- faces kept

def write_faces_csv(path, frames, boxes):
    n = len(frames)
    uniform = np.full((n, 7), 1 / 7)
    rows = FaceRows(np.array(frames), np.array(frames) / 30.0, np.ones(n), np.array(boxes).reshape(-1, 4), uniform,
                    uniform)
    path.write_text(header_line() + format_rows(rows), encoding="utf-8")
    return path


def test_faces_kept_matches_frame_by_frame_at_iou_0_4(tmp_path):
    reference = [np.array([[10, 10, 50, 50], [200, 10, 40, 40]]), np.zeros((0, 4)), np.array([[0, 0, 30, 30]])]
    csv = write_faces_csv(tmp_path / "faces.csv",
                          [0, 0, 1, 2, 5],  # frame 5 is past the reference: not counted
                          [[12, 11, 50, 50],     # frame 0: the first reference face, IoU about 0.9
                           [300, 10, 40, 40],    # frame 0: overlaps nothing: extra
                           [10, 10, 50, 50],     # frame 1: the reference has no face there: extra
                           [200, 10, 40, 40],    # frame 2: a face of frame 0, not of frame 2: extra
                           [0, 0, 30, 30]])
    kept = faces_kept(reference, csv)
    assert kept == {"frames": 3, "naive_faces": 3, "fervid_faces": 4, "kept": 1, "share": round(1 / 3, 4),
                    "extra": 3, "iou": 0.4}


def test_faces_kept_needs_iou_0_4_and_one_box_per_face(tmp_path):
    reference = [np.array([[0, 0, 100, 100]])]
    # IoU of a 100-box with this 60-box inside it: 0.36, under the threshold.
    assert faces_kept(reference, write_faces_csv(tmp_path / "a.csv", [0], [[0, 0, 60, 60]]))["kept"] == 0
    two = faces_kept(reference, write_faces_csv(tmp_path / "b.csv", [0, 0], [[0, 0, 100, 100], [2, 2, 100, 100]]))
    assert (two["kept"], two["extra"], two["share"]) == (1, 1, 1.0)
    assert faces_kept([np.zeros((0, 4))], write_faces_csv(tmp_path / "c.csv", [], []))["share"] is None


# ---------------------------------------------------------------- looped clips

def test_looped_frame_count_is_minutes_of_frames_at_least_one():
    assert looped_frame_count(1, 29.97) == 1798
    assert looped_frame_count(10, 30) == 18000
    assert looped_frame_count(1e-6, 30) == 1


def test_write_looped_plays_the_clip_again_past_its_end(tmp_path):
    path = tmp_path / "looped.mp4"
    write_looped(SAMPLE_CLIP, CLIP_FRAMES + 25, path)
    frames = read_frames(path)
    assert len(frames) == CLIP_FRAMES + 25
    assert {image.shape for image in frames} == {(360, 640, 3)}
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (CLIP_FRAMES + 25, 640, 360)
    assert info.fps == pytest.approx(probe_video(SAMPLE_CLIP).fps, abs=0.01)
    # The frame after the clip's last is its first again: far closer to the written frame 0 than
    # to the last frame before the loop (the performer has walked in by then).
    first, last, looped = (frames[i].astype(float) for i in (0, CLIP_FRAMES - 1, CLIP_FRAMES))
    assert abs(looped - first).mean() < abs(looped - last).mean() / 3
    assert [p.name for p in tmp_path.iterdir()] == ["looped.mp4"]  # no partial file left


def test_looped_clip_is_reused_only_with_the_right_frame_count(tmp_path):
    path = looped_clip(SAMPLE_CLIP, 0.1, tmp_path)
    expected = looped_frame_count(0.1, probe_video(SAMPLE_CLIP).fps)
    assert path.parent == tmp_path and probe_video(path).frames == expected
    written = path.stat().st_mtime_ns
    assert looped_clip(SAMPLE_CLIP, 0.1, tmp_path) == path and path.stat().st_mtime_ns == written
    write_looped(SAMPLE_CLIP, 10, path)  # a file of that name with another frame count is rewritten
    assert looped_clip(SAMPLE_CLIP, 0.1, tmp_path) == path and probe_video(path).frames == expected
    path.write_bytes(b"not a video")
    assert probe_video(looped_clip(SAMPLE_CLIP, 0.1, tmp_path)).frames == expected


# ---------------------------------------------------------------- bad arguments

def test_bad_arguments_exit_2_with_one_line(tmp_path):
    missing = benchmark("--quick", "--json", "--clip", tmp_path / "nowhere.mp4", timeout=120)
    assert missing.returncode == 2 and missing.stdout == ""
    assert "--clip" in missing.stderr and "not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    not_video = benchmark("--quick", "--json", "--clip", text, timeout=120)
    assert not_video.returncode == 2 and not_video.stdout == ""
    assert "not a video" in not_video.stderr and len(not_video.stderr.strip().splitlines()) == 1
    one_length = benchmark("--quick", "--memory-minutes", "1", timeout=120)
    assert one_length.returncode == 2 and "two or more different lengths" in one_length.stderr


# ---------------------------------------------------------------- a real --quick run

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, ray_session):
    """--quick with the two workers on the test session's Ray (the benchmark starts no Ray itself)."""
    folder = tmp_path_factory.mktemp("analyze-benchmark")
    address = ray_session.get_runtime_context().gcs_address
    proc = benchmark("--quick", "--json", "--out", folder / "result.json", "--cache", folder / "cache",
                     "--address", address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # stdout is one JSON document and nothing else
    assert json.loads((folder / "result.json").read_text(encoding="utf-8")) == result
    return result


def check_speed(cell: dict, fps: float, naive: dict | None = None) -> None:
    """frames/s and x real time are the reported frames over the reported seconds; the ratio to the
    naive loop is the quotient of the two frames/s."""
    assert cell["frames"] > 0 and cell["wall_s"] > 0
    assert cell["frames_per_s"] == pytest.approx(cell["frames"] / cell["wall_s"], rel=1e-3)
    assert cell["x_real_time"] == pytest.approx(cell["frames"] / fps / cell["wall_s"], rel=1e-3)
    if naive is not None:
        assert cell["over_naive"] == pytest.approx(cell["frames_per_s"] / naive["frames_per_s"], rel=2e-3)


@pytest.mark.slow
def test_quick_run_measures_every_run_on_the_whole_clip(quick_run):
    result = quick_run
    assert result["benchmark"] == "analyze" and result["machine"]["cpu_count"] >= 1
    config = result["config"]
    assert config["quick"] and config["naive_max_frames"] == QUICK_NAIVE_FRAMES
    assert config["memory_minutes"] == list(QUICK_MEMORY_MINUTES) and config["address"]
    assert result["model"]["load_s"] > 0 and result["model"]["flip_average"] is True

    [video] = result["videos"]
    info = probe_video(SAMPLE_CLIP)
    assert video["frames"] == info.frames == CLIP_FRAMES
    assert video["fps"] == pytest.approx(info.fps, abs=1e-3)
    naive = video["naive"]
    check_speed(naive, video["fps"])
    assert naive["frames"] == QUICK_NAIVE_FRAMES and naive["whole_video"] is False and naive["faces"] >= 0

    for name, workers in (("in_process", 1), ("workers_2", 2)):
        run = video[name]
        assert run["workers"] == workers and run["pool_start_s"] >= 0 and run["close_s"] >= 0
        assert run["tracks"] >= 1 and run["faces"] >= run["tracks"]
        end, steady = run["end_to_end"], run["steady"]
        assert end["frames"] == CLIP_FRAMES  # fervid analyses the whole clip
        assert steady["frames"] + steady["frames_before"] == CLIP_FRAMES and steady["frames_before"] > 0
        assert steady["wall_s"] < end["wall_s"]
        check_speed(end, video["fps"], naive)
        check_speed(steady, video["fps"], naive)
        kept = run["faces_kept"]  # over the naive loop's frames only, against its boxes
        assert kept["frames"] == naive["frames"] and kept["naive_faces"] == naive["faces"]
        assert 0 <= kept["kept"] <= min(kept["naive_faces"], kept["fervid_faces"])
        assert kept["extra"] == kept["fervid_faces"] - kept["kept"]
        if kept["naive_faces"]:
            assert kept["share"] == pytest.approx(kept["kept"] / kept["naive_faces"], abs=1e-4)
    # Every frame scanned whole: fervid's pipeline keeps exactly the naive loop's faces.
    full_scans = video["in_process_full_scans"]
    assert full_scans["full_scan_every"] == 1 and full_scans["end_to_end"]["frames"] == CLIP_FRAMES
    check_speed(full_scans["end_to_end"], video["fps"], naive)
    assert full_scans["faces_kept"]["share"] == 1.0 and full_scans["faces_kept"]["extra"] == 0
    # The same frames analysed alike, on this process or on Ray's workers.
    assert (video["in_process"]["faces"], video["in_process"]["tracks"]) == (video["workers_2"]["faces"],
                                                                             video["workers_2"]["tracks"])
    assert video["workers_2"]["ray"] == config["address"]
    for key in ("end_to_end", "steady"):
        assert video["scaling_2_over_1"][key] == pytest.approx(
            video["workers_2"][key]["frames_per_s"] / video["in_process"][key]["frames_per_s"], rel=2e-3)


@pytest.mark.slow
def test_quick_run_memory_runs_analyse_each_length_and_targets_follow(quick_run):
    result = quick_run
    memory = result["memory"]
    fps = result["videos"][0]["fps"]
    runs = memory["runs"]
    assert [run["minutes"] for run in runs] == list(QUICK_MEMORY_MINUTES)
    for run in runs:
        assert run["frames"] == run["frames_analysed"] == looped_frame_count(run["minutes"], fps)
        assert run["peak_rss_mib"] > 100 and run["samples"] >= 1 and run["processes"] >= 1
    assert memory["peak_ratio_longest_over_shortest"] == pytest.approx(
        runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"], abs=1e-3)

    targets = result["targets"]
    video = result["videos"][0]
    best = max(video[name]["end_to_end"]["over_naive"] for name in ("in_process", "workers_2"))
    assert targets["over_naive"] == best
    best_run = max(("in_process", "workers_2"), key=lambda name: video[name]["end_to_end"]["over_naive"])
    assert targets["faces_kept_share"] == video[best_run]["faces_kept"]["share"]
    assert targets["over_naive_met"] == (best >= TARGET_OVER_NAIVE)
    assert targets["memory_ratio"] == memory["peak_ratio_longest_over_shortest"]
    assert targets["memory_flat_met"] == (targets["memory_ratio"] <= TARGET_MEMORY_RATIO)
