"""probe_video and find_videos: what a recorded video is, and every way a path can fail to be one."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from fervid.analysis.video_file import find_videos, probe_video
from fervid.errors import VideoError
from tests.conftest import SAMPLE_CLIP


def write_video(path, frames: int, fourcc: str = "MJPG", fps: float = 20.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (96, 64))
    for i in range(frames):
        writer.write(np.full((64, 96, 3), (i * 9) % 256, np.uint8))
    writer.release()


def test_the_sample_clip_is_described_from_its_container():
    info = probe_video(SAMPLE_CLIP)
    assert (info.frames, info.width, info.height) == (275, 640, 360)
    assert info.fps == pytest.approx(29.97, abs=0.01) and info.duration_s == pytest.approx(275 / 29.97)
    assert len(info.fingerprint) == 64 and probe_video(SAMPLE_CLIP).fingerprint == info.fingerprint


def test_another_recording_has_another_fingerprint(tmp_path):
    write_video(tmp_path / "a.avi", 10)
    write_video(tmp_path / "b.avi", 11)
    assert probe_video(tmp_path / "a.avi").fingerprint != probe_video(tmp_path / "b.avi").fingerprint


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not a video at all\n" * 100), "not a video OpenCV can read"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(SAMPLE_CLIP.read_bytes()[:200_000]), "not a video OpenCV can read"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: os.mkfifo(p), "is a named pipe"),
    (lambda p: None, "no such file"),
])
def test_what_is_not_a_video_is_one_line(tmp_path, make, message):
    path = tmp_path / "clip.mp4"
    make(path)
    with pytest.raises(VideoError, match=message) as caught:
        probe_video(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_video_without_frames_is_refused(tmp_path):
    path = tmp_path / "none.avi"
    write_video(path, 0)
    with pytest.raises(VideoError, match="none.avi"):
        probe_video(path)


def test_folders_give_their_videos_by_name_and_files_are_kept_as_given(tmp_path):
    for name in ("b.mp4", "a.AVI", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    other = tmp_path / "raw.bin"
    other.write_bytes(b"x")
    assert find_videos([tmp_path, other, tmp_path / "b.mp4"]) == [tmp_path / "a.AVI", tmp_path / "b.mp4", other]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match="a folder without video files"):
        find_videos([empty])
    with pytest.raises(VideoError, match="no such file or folder"):
        find_videos([tmp_path / "gone.mp4"])
