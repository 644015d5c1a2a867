"""Segments: how a video is cut for workers, and the settings a results folder is checked against."""
from __future__ import annotations

import json

import pytest

from fervid.analysis.segments import WARMUP_ANALYSED_FRAMES, AnalysisOptions, analysed_count, split
from fervid.analysis.video_file import VideoInfo, probe_video
from fervid.errors import ModelLoadError
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.classifier_paths import DEFAULT_MODEL_PATH
from fervid.models.face_detector import DetectorParams
from fervid.models.scan_plan import PlanParams


@pytest.fixture(scope="module")
def sample():
    return probe_video(SAMPLE_CLIP)


def test_segments_cover_the_video_once_with_warm_ups_before_them(sample):
    segments = split(sample, AnalysisOptions(segment_s=3.0, overlap_s=0.5))
    # 3 s at 29.97 fps is 90 frames, the warm-up 15; 275 frames make three whole segments and a short one.
    assert [(s.index, s.warmup_start, s.start, s.stop) for s in segments] == [
        (0, 0, 0, 90), (1, 75, 90, 180), (2, 165, 180, 270), (3, 255, 270, 275)]
    assert all(s.video == str(SAMPLE_CLIP) and s.info == sample for s in segments)


def test_one_segment_when_the_video_is_shorter_and_no_warm_up_without_overlap(sample):
    assert [(s.warmup_start, s.start, s.stop) for s in split(sample, AnalysisOptions(segment_s=60))] == [(0, 0, 275)]
    no_overlap = split(sample, AnalysisOptions(segment_s=2.0, overlap_s=0.0))
    assert all(s.warmup_start == s.start for s in no_overlap)
    assert [s.start for s in no_overlap] == list(range(0, 275, 60))


def test_a_frame_rate_other_than_the_samples_changes_the_length_in_frames():
    info = VideoInfo("v.avi", frames=100, fps=10.0, width=64, height=64, fingerprint="x")
    segments = split(info, AnalysisOptions(segment_s=4.0, overlap_s=1.0))
    assert [(s.warmup_start, s.start, s.stop) for s in segments] == [(0, 0, 40), (30, 40, 80), (70, 80, 100)]


def test_frames_to_analyse_counts_the_multiples_of_every(sample):
    for every in (1, 2, 3, 7):
        segments = split(sample, AnalysisOptions(segment_s=1.0, every=every))
        assert sum(s.frames_to_analyse for s in segments) == len(range(0, 275, every))
    for start, stop, every in [(0, 10, 3), (1, 10, 3), (3, 4, 3), (4, 6, 3), (5, 5, 2), (17, 90, 4)]:
        assert analysed_count(start, stop, every) == sum(1 for i in range(start, stop) if i % every == 0)


def test_settings_are_json_and_name_what_changes_results(tmp_path):
    options = AnalysisOptions(every=2, detector=DetectorParams(min_size=50))
    settings = options.settings()
    assert json.loads(json.dumps(settings)) == settings
    assert settings["every"] == 2 and settings["detector"]["min_size"] == 50
    assert settings["tracking"]["plan"]["min_size"] == 50, "tracking follows the app's rule for the detector"
    assert options.tracking.plan.min_size == 50
    assert AnalysisOptions(batch_frames=4).settings() == AnalysisOptions(batch_frames=64).settings()

    copy = tmp_path / "copy.keras"
    copy.write_bytes(DEFAULT_MODEL_PATH.read_bytes())
    assert AnalysisOptions(model=copy).settings() == AnalysisOptions().settings(), "the weights, not their name"
    other = tmp_path / "other.keras"
    other.write_bytes(DEFAULT_MODEL_PATH.read_bytes() + b"\0")
    assert AnalysisOptions(model=other).settings()["model_sha256"] != settings["model_sha256"]
    with pytest.raises(ModelLoadError, match="missing.keras"):
        AnalysisOptions(model=tmp_path / "missing.keras").settings()


@pytest.mark.parametrize("bad", [dict(every=0), dict(segment_s=0), dict(overlap_s=-1), dict(segment_s=1, overlap_s=2),
                                 dict(batch_frames=0)])
def test_options_out_of_range_are_refused(bad):
    with pytest.raises(ValueError):
        AnalysisOptions(**bad)


def test_a_warm_up_holds_analysed_frames_however_sparse_the_analysis(sample):
    """With --every 30 half a second holds no analysed frame; the warm-up grows to hold three, so
    the neighbours still share frames to join their tracks by."""
    sparse = split(sample, AnalysisOptions(every=30, segment_s=4.0, overlap_s=0.5))
    for segment in sparse[1:]:
        analysed = [i for i in range(segment.warmup_start, segment.start) if i % 30 == 0]
        assert len(analysed) >= WARMUP_ANALYSED_FRAMES, (segment.warmup_start, segment.start)
    dense = split(sample, AnalysisOptions(every=1, segment_s=4.0, overlap_s=0.5))
    assert all(s.start - s.warmup_start == 15 for s in dense[1:])  # 0.5 s at 29.97 fps, unchanged


def test_full_scan_every_reaches_the_plan_and_the_settings():
    default = AnalysisOptions()
    assert default.tracking.plan.full_scan_every == PlanParams().full_scan_every
    every_frame = AnalysisOptions(full_scan_every=1)
    assert every_frame.tracking.plan.full_scan_every == 1
    assert every_frame.tracking.plan.min_size == default.tracking.plan.min_size, "only that setting changes"
    assert every_frame.settings()["tracking"]["plan"]["full_scan_every"] == 1
    assert every_frame.settings() != default.settings(), "a rerun with another plan is another run"
    with pytest.raises(ValueError, match="full_scan_every"):
        AnalysisOptions(full_scan_every=0)
