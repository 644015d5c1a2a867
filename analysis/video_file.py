"""``VideoInfo``: what a recorded video is (frames, rate, size, identity), read before analysing it.

Every bad input is found here, before any worker starts or any output folder is touched: a missing
path, a folder or a pipe, a file OpenCV cannot open (not a video, or an MP4 cut before its index),
a video without a single decodable frame. A file that opens but ends before the frame count its
header promises (cut mid-stream) is found while reading; the segment that meets the early end says
so (``VideoError``), and the run stops with that one line.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2

from fervid.errors import VideoError
from fervid.media.files import check_regular_file

DEFAULT_VIDEO_FPS = 25.0
"""Frame rate assumed for a file that stores none (as the service does for such files)."""

FINGERPRINT_BYTES = 1 << 20
"""A video is recognised by its size and a hash of its first and last MiB: cheap for an hour of
video, and enough to tell another recording (or a re-encoded copy) from the one analysed."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frames: int
    """Frame count from the container (what segments are cut by)."""
    fps: float
    width: int
    height: int
    fingerprint: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    def to_dict(self) -> dict:
        return {**asdict(self), "duration_s": round(self.duration_s, 3)}


def quiet_decoder_logs() -> None:
    """Keep FFmpeg's and OpenCV's own complaints ("moov atom not found", "backend is generally
    available but...") off stderr: a damaged video is reported in one line of ours, and a progress
    bar shares the terminal. FFmpeg reads its level when its backend first opens a file; a user's own
    ``OPENCV_FFMPEG_LOGLEVEL`` wins."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def open_video(path: str | Path) -> cv2.VideoCapture:
    """OpenCV's FFmpeg reader on a file (the backend the service reads files with)."""
    quiet_decoder_logs()
    return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)


def fingerprint(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        digest.update(f.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(f.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def probe_video(path: str | Path) -> VideoInfo:
    """Check ``path`` is a video with frames and describe it; ``VideoError`` (one line) otherwise."""
    path = Path(path)
    check_regular_file(path, "a video file", VideoError)
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file, not a video")
    cap = open_video(path)
    try:
        if not cap.isOpened():
            raise VideoError(f"{path}: not a video OpenCV can read (damaged, truncated or unsupported)")
        ok, image = cap.read()
        if not ok or image is None:
            raise VideoError(f"{path}: no frames could be decoded")
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    if frames <= 0:
        raise VideoError(f"{path}: the file states no frame count (a stream, not a recorded video)")
    if not math.isfinite(fps) or not 0 < fps < 1000:
        fps = DEFAULT_VIDEO_FPS
    height, width = image.shape[:2]
    return VideoInfo(str(path), frames, fps, int(width), int(height), fingerprint(path))


VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".mjpeg", ".mjpg", ".3gp", ".ts"})
"""What a folder's videos are called: a folder argument is searched (not recursively) for these.
A file named on the command line is tried whatever its name."""


def find_videos(paths: list[Path]) -> list[Path]:
    """The videos the user named: files as given, folders' video files by name, in a stable order.
    A folder without videos, or a path that does not exist, is a ``VideoError``."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            if not inside:
                raise VideoError(f"{path}: a folder without video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            raise VideoError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))
