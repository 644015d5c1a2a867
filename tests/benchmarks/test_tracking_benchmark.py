"""The tracking benchmark: extra boxes, true tracks, fragmentation, the selection rule, and a real --quick run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fervid.benchmarks.tracking import (MEASURED_CODE, PARTS, QUICK_FRAMES, RULE, Clip, candidate_name, candidates, choose,
                                        parse_args, extra_boxes, fragmentation, part_fps, qualifies, truth_tracks,
                                        upscaled)

REPO = Path(__file__).resolve().parents[2]


def test_extra_boxes_are_in_neither_the_truth_nor_the_full_scan():
    truths = [(0, 0, 10, 10)]
    full = [(100, 100, 20, 20)]
    boxes = [(0, 0, 10, 10), (101, 101, 20, 20), (300, 300, 10, 10), (5, 0, 10, 10)]  # last: IoU 1/3 < 0.4
    assert extra_boxes(boxes, truths, full) == 2
    assert extra_boxes([], truths, full) == 0
    assert extra_boxes(boxes, [], []) == 4


# ---------------------------------------------------------------- true tracks and fragmentation

def test_truth_tracks_link_consecutive_frames_and_break_at_gaps_and_jumps():
    a, far = (10, 10, 20, 20), (200, 10, 20, 20)
    truth = {0: [a, far], 1: [far, (12, 10, 20, 20)], 2: [(14, 10, 20, 20)], 4: [(14, 10, 20, 20)],
             5: [(100, 100, 20, 20)]}
    tracks = truth_tracks(truth, range(0, 6))
    assert tracks == [[(0, 0), (1, 1), (2, 0)], [(0, 1), (1, 0)], [(4, 0)], [(5, 0)]]
    # Only the frames asked for: a part starting inside a face's track starts a track there.
    assert truth_tracks(truth, range(1, 3)) == [[(1, 0)], [(1, 1), (2, 0)]]


def test_fragmentation_counts_distinct_ids_and_switches_among_found_boxes():
    tracks = [[(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)], [(0, 1), (1, 1)], [(7, 0)]]
    ids_of = {(0, 0): 1, (1, 0): 1, (3, 0): 2, (4, 0): 1,  # frame 2 not found: no switch counted there
              (0, 1): 5, (1, 1): 5}
    result = fragmentation(tracks, ids_of)
    assert result == {"truth_tracks": 3, "found_tracks": 2, "track_ids": 3, "id_switches": 2,
                      "ids_per_found_track": 1.5}
    assert fragmentation(tracks, {})["ids_per_found_track"] is None


def test_part_fps_times_only_the_parts_frames_and_takes_the_median_pass():
    passes = [[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.5, 0.5], [0.05, 0.05, 1.0, 1.0]]
    assert part_fps(passes, [0, 1]) == pytest.approx(10.0)  # 2 frames in 0.2 s, 0.4 s, 0.1 s: median 10/s
    assert part_fps(passes, [2, 3]) == pytest.approx(2.0)
    assert part_fps(passes, [0, 1, 2, 3]) == pytest.approx(4 / 1.4)  # passes of 1.2, 1.4 and 2.1 s


# ---------------------------------------------------------------- candidates and the rule

def test_the_grid_has_48_distinct_candidates_with_the_detectors_min_size():
    plans = candidates(60)
    assert len(plans) == len(set(plans)) == len({candidate_name(p) for p in plans}) == 48
    assert {p.min_size for p in plans} == {60}
    assert {p.full_scan_every for p in plans} == {5, 10, 15} and {p.region_face_px for p in plans} == {0, 48}
    assert len(candidates(60, quick=True)) == 2


def _row(name: str, fps: float, recall_full: float, recall_truth: float) -> dict:
    return {"name": name, "parts": {"first_half": {"fps": fps, "recall_full": recall_full,
                                                   "recall_truth": recall_truth}}}


def test_choose_follows_the_rule():
    base = _row("full", 10, 1.0, 0.80)
    rows = [_row("fast-loses-full", 90, 0.949, 0.80),
            _row("fast-loses-truth", 80, 0.99, 0.789),
            _row("ok-fastest", 40, 0.95, 0.791),
            _row("ok-within-3%", 38.9, 0.97, 0.80),
            _row("ok-slower", 30, 1.0, 0.85)]
    chosen, qualified = choose(rows, base)
    assert (chosen["name"], qualified) == ("ok-within-3%", True)
    assert qualifies(rows[2]["parts"]["first_half"], base["parts"]["first_half"])
    assert not qualifies(rows[1]["parts"]["first_half"], base["parts"]["first_half"])
    # Just outside 3% of the fastest: speed wins.
    rows[3]["parts"]["first_half"]["fps"] = 38.7
    assert choose(rows, base)[0]["name"] == "ok-fastest"
    # None qualifies: the highest recall against the full scan.
    chosen, qualified = choose([_row("a", 50, 0.90, 0.5), _row("b", 20, 0.93, 0.5)], base)
    assert (chosen["name"], qualified) == ("b", False)


# ---------------------------------------------------------------- a real --quick run

@pytest.mark.slow
def test_quick_run_json_is_consistent(tmp_path):
    out, png = tmp_path / "tracking.json", tmp_path / "tracking.png"
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.tracking", "--quick", "--json", "--out", str(out),
                           "--plot", str(png)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert result["rule"] == RULE
    # Provenance read before the timings: the commit, and which of the measured files differed from it.
    assert isinstance(result["machine"]["git_commit"], str)
    assert all(path.startswith(MEASURED_CODE) for path in result["uncommitted_code"])
    config = result["config"]
    width, height = config["size"]
    first, last = config["frames"]
    frames = last - first + 1
    assert (first, last + 1) == QUICK_FRAMES and (width, height) == (640, 360)
    assert config["detector"] == {"scale_factor": 1.05, "min_neighbors": 5, "min_size": 60, "downscale": 0.75}
    assert config["parts"]["first_half"][0] == first and config["parts"]["second_half"][1] == last
    assert config["parts"]["second_half"][0] == config["parts"]["first_half"][1] + 1

    baseline, rows = result["baseline"], result["candidates"]
    assert len(rows) == 2 and all(row["passes"] == config["repeats"] for row in rows)
    assert baseline["passes"] == config["baseline_passes"] >= config["repeats"]
    for part in PARTS:
        cell = baseline["parts"][part]
        assert cell["pixels_scanned"] == cell["frames"] * width * height and cell["pixels_share"] == 1.0
        assert cell["full_scans"] == cell["frames"] and cell["region_scans"] == 0
        assert cell["recall_full"] == 1.0 and cell["extra_boxes"] == 0 and cell["fps_ratio"] == 1.0
        assert result["truth"][part]["faces"] == cell["truth_faces"]
    assert baseline["parts"]["clip"]["pixels_scanned"] == frames * width * height

    for row in [baseline, *rows]:
        assert row["same_boxes_every_repeat"], row["name"]
        parts = row["parts"]
        assert parts["first_half"]["frames"] + parts["second_half"]["frames"] == parts["clip"]["frames"] == frames
        for key in ("truth_faces", "truth_found", "full_scan_boxes", "full_scan_found", "boxes", "extra_boxes",
                    "pixels_scanned", "full_scans", "region_scans"):
            assert parts["first_half"][key] + parts["second_half"][key] == parts["clip"][key], (row["name"], key)
        for part in PARTS:
            cell = parts[part]
            assert 0 <= cell["recall_truth"] <= 1 and 0 <= cell["recall_full"] <= 1
            assert cell["recall_truth"] == pytest.approx(cell["truth_found"] / cell["truth_faces"], abs=1e-4)
            assert cell["recall_full"] == pytest.approx(cell["full_scan_found"] / cell["full_scan_boxes"], abs=1e-4)
            assert 0 <= cell["extra_boxes"] <= cell["boxes"]
            assert cell["fps"] > 0
            assert cell["fps_ratio"] == pytest.approx(cell["fps"] / baseline["parts"][part]["fps"], rel=0.01)
            assert 0 < cell["pixels_share"] <= 1
            assert cell["pixels_share"] == pytest.approx(cell["pixels_scanned"] / (cell["frames"] * width * height),
                                                         abs=1e-4)
            assert 1 <= cell["full_scans"] <= cell["frames"]
            fragments = cell["fragmentation"]
            assert fragments["truth_tracks"] == result["truth"][part]["tracks"] >= 1
            assert fragments["found_tracks"] <= fragments["truth_tracks"]
            assert fragments["track_ids"] >= fragments["found_tracks"]
            assert fragments["id_switches"] >= fragments["track_ids"] - fragments["found_tracks"]
    # Regions scan less than a full frame: a candidate that made region plans scanned fewer pixels.
    assert any(row["parts"]["clip"]["region_scans"] > 0 for row in rows)
    for row in rows:
        clip = row["parts"]["clip"]
        if clip["full_scans"] < clip["frames"]:
            assert clip["pixels_scanned"] < frames * width * height

    chosen = next(row for row in rows if row["name"] == result["chosen"]["name"])
    assert choose(rows, baseline)[0]["name"] == chosen["name"]
    assert result["chosen"]["qualified"] == chosen["qualifies_first_half"]
    assert result["chosen"]["first_half"] == chosen["parts"]["first_half"]
    assert result["held_out"]["second_half"] == chosen["parts"]["second_half"]
    assert result["held_out"]["clip"] == chosen["parts"]["clip"]
    assert result["held_out"]["meets_thresholds_on_second_half"] == qualifies(chosen["parts"]["second_half"],
                                                                              baseline["parts"]["second_half"])


def test_missing_truth_file_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.tracking", "--quick", "--json",
                           "--truth", str(tmp_path / "nowhere.json")], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "not found" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_grid_option_replaces_one_fields_values_and_names_say_the_new_fields():
    args = parse_args(["--grid", "region_scan_every=1,2,3", "--grid", "scan_lost_tracks=true,false",
                       "--grid", "full_scan_every=15", "--grid", "motion=true"])
    grid = dict(args.grid)
    assert grid == {"region_scan_every": (1, 2, 3), "scan_lost_tracks": (True, False), "full_scan_every": (15,),
                    "motion": (True,)}
    plans = candidates(60, grid=grid)
    assert len(plans) == 3 * 2 * 2 * 2 * 2 == len({candidate_name(p) for p in plans})
    names = {candidate_name(p) for p in plans}
    assert "every15-motion-m0.5-r1.5-px48-scan3-droplost" in names and "every15-motion-m0.35-r1.3-px0" in names


@pytest.mark.parametrize("value", ["speed=1", "region_scan_every", "region_scan_every=two", "motion=yes",
                                   "full_scan_every="])
def test_a_bad_grid_option_is_a_one_line_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--grid", value])
    assert exit_info.value.code == 2
    assert "--grid" in capsys.readouterr().err


def test_a_grid_value_plan_params_refuses_is_a_one_line_error():
    result = subprocess.run([sys.executable, "-m", "fervid.benchmarks.tracking", "--grid", "region_scan_every=0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "fervid.benchmarks.tracking: error: --grid: region_scan_every must be >= 1, got 0"]


def test_upscaled_clip_resizes_frames_and_truth_together():
    frame = np.zeros((36, 64, 3), np.uint8)
    frame[10:20, 30:40] = 255  # a white square where the truth box is
    clip = Clip(5, [frame, frame.copy()], {5: [[30, 10, 10, 10]], 9: []}, 64, 36)
    big = upscaled(clip, 2.0)
    assert (big.width, big.height, big.first) == (128, 72, 5)
    assert all(f.shape == (72, 128, 3) for f in big.frames) and len(big.frames) == 2
    assert big.truth == {5: [[60, 20, 20, 20]], 9: []}
    x, y, w, h = big.truth[5][0]
    assert big.frames[0][y + 2:y + h - 2, x + 2:x + w - 2].min() == 255  # the box still lies on the square
    assert upscaled(clip, 1.0) is clip


@pytest.mark.parametrize("value", ["0.5", "5", "big"])
def test_upscale_outside_1_to_4_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--upscale", value])
    assert exit_info.value.code == 2
    assert "factor from 1 to 4" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_at_twice_the_size_reports_the_size(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.tracking", "--quick", "--json", "--upscale", "2",
                           "--repeats", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["config"]["size"] == [1280, 720] and result["config"]["upscale"] == 2.0
    baseline = result["baseline"]["parts"]["clip"]
    assert baseline["pixels_scanned"] == baseline["frames"] * 1280 * 720
    assert result["truth"]["clip"]["faces"] == baseline["truth_faces"] > 0
