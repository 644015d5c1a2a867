"""The detector sweep: its IoU matcher, its selection rule, the truth file, and a real --quick run."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fervid.benchmarks.detector import (BASELINE, CLIP_RECALL_TOLERANCE, PHOTOS_RECALL_TOLERANCE, QUICK_PHOTOS, TRUTH_FILE,
                                 grid, iou, match, meets_rule, pairs, select, setting_name)
from tests.conftest import OBAMA, TWO_PEOPLE

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- IoU and matching

def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0  # touching edges share no area
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (2, 2, 5, 5)) == pytest.approx(25 / 100)  # box inside box


def test_match_counts_and_found_indices():
    truths = [(0, 0, 10, 10), (100, 100, 20, 20), (200, 0, 10, 10)]
    detections = [(101, 101, 20, 20), (1, 0, 10, 10), (300, 300, 10, 10)]
    result = match(detections, truths)
    assert (result.tp, result.fp, result.fn) == (2, 1, 1)
    assert result.found == (0, 1)


def test_match_threshold_is_inclusive_and_respected():
    truth = [(0, 0, 10, 10)]
    assert match([(5, 0, 10, 10)], truth, threshold=0.3).tp == 1  # IoU 1/3
    assert match([(5, 0, 10, 10)], truth, threshold=0.34).tp == 0
    assert match([(0, 0, 10, 10)], truth, threshold=1.0).tp == 1


def test_match_one_detection_per_truth_box():
    truth = [(0, 0, 10, 10)]
    result = match([(0, 0, 10, 10), (1, 1, 10, 10)], truth)
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)


def test_match_prefers_the_highest_iou_pairing():
    # Detection 0 overlaps truth 0 (IoU 0.67) and truth 1 (0.43); detection 1 sits exactly on truth 0 and
    # barely touches truth 1 (0.25). Taking detections in order would give truth 0 to detection 0 and find
    # one face; pairing the highest IoU first finds both.
    truths = [(0, 0, 10, 10), (6, 0, 10, 10)]
    detections = [(2, 0, 10, 10), (0, 0, 10, 10)]
    result = match(detections, truths)
    assert (result.tp, result.fp, result.fn) == (2, 0, 0)


def test_match_empty_inputs():
    assert match([], []).tp == 0
    assert (match([], [(0, 0, 5, 5)]).fn, match([(0, 0, 5, 5)], []).fp) == (1, 1)


def _random_boxes(rng: random.Random, n: int) -> list[tuple[int, int, int, int]]:
    return [(rng.randint(0, 60), rng.randint(0, 60), rng.randint(8, 30), rng.randint(8, 30)) for _ in range(n)]


def test_match_counts_the_pairs_and_pairs_use_each_box_once():
    rng = random.Random(7)
    for _ in range(300):
        detections, truths = _random_boxes(rng, rng.randint(0, 6)), _random_boxes(rng, rng.randint(0, 6))
        for threshold in (0.3, 0.4):
            found = pairs(detections, truths, threshold)
            reference = match(detections, truths, threshold)
            assert len(found) == reference.tp
            assert tuple(sorted(t for _, t in found)) == reference.found
            assert len({d for d, _ in found}) == len(found)


def test_pairs_takes_the_highest_iou_first_and_keeps_the_threshold():
    truths = [(0, 0, 10, 10), (6, 0, 10, 10)]
    detections = [(2, 0, 10, 10), (0, 0, 10, 10)]
    assert sorted(pairs(detections, truths, 0.4)) == [(0, 1), (1, 0)]
    assert pairs([(5, 0, 10, 10)], [(0, 0, 10, 10)], 0.33) == [(0, 0)]  # IoU 1/3
    assert pairs([(5, 0, 10, 10)], [(0, 0, 10, 10)], 0.4) == []


# ---------------------------------------------------------------- grid and selection rule

def _row(name: str, fps: float, clip_recall: float, photos_recall: float) -> dict:
    return {"name": name, "clip": {"fps": fps, "recall": clip_recall}, "photos": {"fps": fps, "recall": photos_recall}}


def test_select_takes_the_fastest_row_within_the_tolerances():
    base = _row("base", 10, 0.80, 1.0)
    rows = [base,
            _row("fast-loses-clip", 90, 0.80 - CLIP_RECALL_TOLERANCE - 0.001, 1.0),
            _row("fast-loses-photo", 80, 0.85, 1.0 - PHOTOS_RECALL_TOLERANCE - 0.001),
            _row("ok", 40, 0.80 - CLIP_RECALL_TOLERANCE + 0.001, 1.0 - PHOTOS_RECALL_TOLERANCE + 0.001),
            _row("slower-ok", 30, 0.9, 1.0)]
    assert select(rows, base)["name"] == "ok"
    assert select([base, _row("bad", 50, 0.5, 1.0)], base)["name"] == "base"


def test_grid_holds_the_baseline_first_and_no_duplicates():
    settings = grid()
    assert settings[0] == BASELINE
    assert len(settings) == len(set(settings)) == 3 * 4 * 4 + 3
    assert {p.min_neighbors for p in settings} == {3, 4, 5, 6}
    assert len(grid(quick=True)) == 3 and grid(quick=True)[0] == BASELINE
    assert setting_name(BASELINE) == "ds1-min30-sf1.1-nb5"


# ---------------------------------------------------------------- truth file

def _valid_box(box: list, width: int, height: int) -> bool:
    x, y, w, h = box
    return (all(isinstance(v, int) for v in box) and w > 0 and h > 0 and x >= 0 and y >= 0
            and x + w <= width and y + h <= height)


def test_truth_file_is_well_formed():
    truth = json.loads(TRUTH_FILE.read_text(encoding="utf-8"))
    assert isinstance(truth["method"], str) and truth["method"]
    assert set(truth["photos"]) == {"obama.jpg", "biden.jpg", "two_people.jpg", "obama_and_biden.jpg",
                                    "test_image.jpg", "solvay_conference.jpg"}
    for name, photo in truth["photos"].items():
        width, height = photo["size"]
        assert photo["faces"] and isinstance(photo["notes"], str), name
        assert all(_valid_box(box, width, height) for box in photo["faces"]), name
    clip = truth["clip"]
    assert clip["frame_count"] == 275 and clip["size"] == [640, 360]
    width, height = clip["size"]
    for frame, boxes in clip["faces"].items():
        assert 0 <= int(frame) < clip["frame_count"], frame
        assert boxes and all(_valid_box(box, width, height) for box in boxes), frame
    assert truth["counts"]["photos"] == sum(len(p["faces"]) for p in truth["photos"].values())
    assert truth["counts"]["clip"] == sum(len(boxes) for boxes in clip["faces"].values())


# ---------------------------------------------------------------- a real --quick run

@pytest.mark.slow
def test_quick_run_json_out_and_plot(tmp_path):
    # The quick run's two photos also ship in the repository (byte-identical to ../shared/data/media),
    # so it runs on a clean clone without the shared folder.
    media = tmp_path / "media"
    media.mkdir()
    for photo in (OBAMA, TWO_PEOPLE):
        shutil.copy(photo, media / photo.name)
    assert {path.name for path in media.iterdir()} == set(QUICK_PHOTOS)
    out, png = tmp_path / "detector.json", tmp_path / "detector.png"
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.detector", "--quick", "--json", "--out", str(out),
                           "--plot", str(png), "--media", str(media)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = {row["name"]: row for row in result["rows"]}
    assert len(rows) == len(result["rows"]) >= 3
    baseline = rows[result["baseline"]["name"]]
    assert baseline["is_baseline"] and baseline["params"] == {"scale_factor": 1.1, "min_neighbors": 5,
                                                               "min_size": 30, "downscale": 1.0}
    for row in rows.values():
        for medium in ("clip", "photos"):
            cell = row[medium]
            for key in ("fps", "recall", "precision", "speedup", "recall_vs_baseline", "tp", "fp", "faces"):
                assert key in cell, (row["name"], medium, key)
            assert cell["fps"] > 0 and 0 <= cell["recall"] <= 1
            assert cell["speedup"] == pytest.approx(cell["fps"] / baseline[medium]["fps"], rel=0.01, abs=0.005)
            assert cell["recall_vs_baseline"] == pytest.approx(cell["recall"] - baseline[medium]["recall"], abs=2e-4)
    assert baseline["clip"]["speedup"] == baseline["photos"]["speedup"] == 1.0

    rule = result["selection_rule"]
    assert "0.01" in rule and "0.02" in rule
    chosen = rows[result["recommended"]["name"]]
    assert chosen["clip"]["recall"] >= baseline["clip"]["recall"] - 0.01 - 1e-3
    assert chosen["photos"]["recall"] >= baseline["photos"]["recall"] - 0.02 - 1e-3
    assert meets_rule(chosen, baseline) and chosen["meets_rule"]
    assert all(row["clip"]["fps"] <= chosen["clip"]["fps"] for row in rows.values() if row["meets_rule"])
    assert {"gain", "cost", "statement"} <= set(result["recommended"])
    assert result["config"]["clip_frames_evaluated"] == 28 and len(result["config"]["photos"]) == 2


def test_missing_media_folder_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.detector", "--quick", "--json",
                           "--media", str(tmp_path / "nowhere")], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "not found" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
