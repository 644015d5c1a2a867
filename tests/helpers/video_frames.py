"""Every frame of a video file, for tests that compare what was written or analysed frame by frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fervid.analysis.video_file import open_video


def read_frames(path: str | Path) -> list[np.ndarray]:
    """The frames OpenCV's FFmpeg reader decodes from ``path`` (BGR, in order; [] when none),
    read with the reader ``fervid analyze`` uses."""
    capture = open_video(path)
    frames = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
    finally:
        capture.release()
    return frames
