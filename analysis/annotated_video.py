"""annotated.mp4 (``--annotate``): the video again, with each face's box, track id and smoothed label.

The video is read once more, in order, frame by frame, and faces.csv is streamed beside it (both
are in frame order), so memory stays at one frame and one chunk of rows whatever the length. Faces
are drawn by ``fervid.models.annotate.draw_faces``, the drawing the monitor and the app use, so the
file shows what a person saw live. With ``every`` > 1 only every ``every``-th frame was analysed
(the frames whose index is a multiple of it); the frames between show the faces of the last
analysed frame, as a live view would.

The codec is ``mp4v`` (MPEG-4 Part 2): the opencv-python wheels bundle an FFmpeg that can encode
it, while H.264 is not in those wheels. Every common player reads it; re-encode with ffmpeg for a
smaller file. The MP4 is written under a partial name and renamed when its last frame is in, so an
interrupted run never leaves a half video under the final name.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from fervid.analysis.atomic_write import fsync_folder, partial_path
from fervid.analysis.face_rows import FaceRows
from fervid.analysis.video_file import VideoInfo, open_video
from fervid.errors import AnalysisOutputError, VideoError
from fervid.models.annotate import draw_faces
from fervid.models.faces import Faces

FOURCC = "mp4v"
PROGRESS_EVERY = 16
"""Frames per ``on_frames`` call: often enough for a progress bar, rare enough to cost nothing."""


def _faces(rows: FaceRows) -> Faces:
    return Faces(rows.boxes, rows.probabilities, rows.track, rows.smoothed)


def faces_by_frame(rows_chunks: Iterable[FaceRows]) -> Iterator[tuple[int, Faces]]:
    """Each frame that has rows, in order, with its faces (a frame whose rows straddle two chunks
    comes out once). ``ValueError`` when the rows are not in frame order."""
    pending: tuple[int, list[FaceRows]] | None = None
    for rows in rows_chunks:
        if not len(rows):
            continue
        if (np.diff(rows.frame) < 0).any() or (pending is not None and rows.frame[0] < pending[0]):
            raise ValueError("rows are not in frame order")
        starts = [0, *(np.flatnonzero(np.diff(rows.frame)) + 1).tolist(), len(rows)]
        for a, b in zip(starts[:-1], starts[1:]):
            frame, part = int(rows.frame[a]), rows.take(slice(a, b))
            if pending is not None and pending[0] == frame:
                pending[1].append(part)
                continue
            if pending is not None:
                yield pending[0], _faces(FaceRows.concat(pending[1]))
            pending = (frame, [part])
    if pending is not None:
        yield pending[0], _faces(FaceRows.concat(pending[1]))


def write_annotated(video: VideoInfo, rows: Iterable[FaceRows], dest: Path, every: int,
                    on_frames: Callable[[int], None] | None = None) -> int:
    """Write ``video`` with its faces drawn to ``dest`` (MP4, the video's rate and size) and return
    the number of frames written. ``rows``: faces.csv's chunks in frame order (``read_rows``);
    ``on_frames(n)``: ``n`` more frames written. ``VideoError`` when the video cannot be read or ends
    before a frame that has faces (it changed since it was analysed); ``AnalysisOutputError`` when
    the MP4 cannot be written."""
    if every < 1:
        raise ValueError("every must be at least 1")
    capture = open_video(video.path)
    if not capture.isOpened():
        raise VideoError(f"{video.path}: not a video OpenCV can read (damaged, truncated or unsupported)")
    partial = partial_path(dest)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*FOURCC), video.fps, (video.width, video.height))
    try:
        if not writer.isOpened():
            raise AnalysisOutputError(f"{dest}: cannot write an MPEG-4 video there")
        frames = faces_by_frame(rows)
        upcoming = next(frames, None)
        shown = Faces.empty()
        written = unreported = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if upcoming is not None and upcoming[0] == written:
                shown = upcoming[1]
                upcoming = next(frames, None)
            elif written % every == 0:
                shown = Faces.empty()  # analysed, and no face was found
            writer.write(draw_faces(image, shown) if len(shown) else image)
            written += 1
            unreported += 1
            if on_frames is not None and unreported == PROGRESS_EVERY:
                on_frames(unreported)
                unreported = 0
        if upcoming is not None:
            raise VideoError(f"{video.path}: ends after {written} frames, but faces were found on frame "
                             f"{upcoming[0]} (the file changed since it was analysed?)")
        writer.release()
        if on_frames is not None and unreported:
            on_frames(unreported)
        os.replace(partial, dest)
        fsync_folder(dest.parent)
        return written
    except BaseException:
        writer.release()
        partial.unlink(missing_ok=True)
        raise
    finally:
        capture.release()
