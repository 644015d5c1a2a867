"""timeline.png: each face track's smoothed expression over the video, one horizontal lane per track.

A lane is a stacked area of the track's seven smoothed probabilities over time, in the class
colours the boxes and bars use (``fervid.models.annotate.EMOTION_COLOURS_BGR``): a glance shows who
smiled when, and how sure the classifier was (a lane of one colour is a clear expression, a lane of
stripes an uncertain one), and the legend is the one a viewer already knows from the annotated
video. Lanes run from the earliest track at the top; where a track was not seen, its lane is blank.

matplotlib's ``Figure`` with the Agg canvas is used directly, never ``pyplot``: no global backend
or figure registry is touched, so the app (Qt) and threads can draw timelines safely. The PNG is
written under a partial name and renamed when complete.

A long video's rows are thinned before plotting (``timeline_rows``): at most ``POINTS_PER_LANE``
rows per track, which is more than the figure's width in pixels, so an hour of video plots in
bounded memory and time and looks the same.
"""
from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fervid.analysis.atomic_write import fsync_folder, partial_path
from fervid.analysis.face_rows import FaceRows
from fervid.analysis.video_file import VideoInfo
from fervid.models.annotate import EMOTION_COLOURS_BGR
from fervid.models.labels import EMOTIONS

DPI = 100
WIDTH_PX = 1200
BASE_HEIGHT_PX = 170
"""Title, time axis and legend."""
LANE_HEIGHT_PX = 45
LANE_FILL = 0.8
"""Share of a lane's height its area fills (the rest separates it from the next lane)."""
POINTS_PER_LANE = 2000
GAP_STEPS = 2.5
"""A track's lane breaks where two of its rows are more than this many of its usual steps apart
(the face was not seen there)."""
EMOTION_COLOURS_RGB: dict[str, tuple[float, float, float]] = {
    name: (r / 255, g / 255, b / 255) for name, (b, g, r) in EMOTION_COLOURS_BGR.items()}


def timeline_size(lanes: int) -> tuple[int, int]:
    """Width and height in pixels of a timeline with ``lanes`` lanes (a plot without faces has the
    height of one)."""
    return WIDTH_PX, BASE_HEIGHT_PX + LANE_HEIGHT_PX * max(lanes, 1)


def longest_tracks(track_ids: np.ndarray, frames_seen: np.ndarray, max_tracks: int) -> list[int]:
    """The ``max_tracks`` tracks seen on most frames (ties: the lower id), as a list of ids."""
    order = np.lexsort((track_ids, -frames_seen))
    return [int(track_ids[i]) for i in order[:max_tracks]]


def timeline_title(video_name: str, shown: int, total: int) -> str:
    """The plot's title: the video's name, and how many tracks are left out when not all are shown."""
    title = f"{video_name}: smoothed expression of each face track over time"
    return f"{title}; the {shown} longest of {total} tracks, {total - shown} left out" if total > shown else title


def timeline_rows(rows_chunks: Iterable[FaceRows], tracks: Collection[int], duration_s: float,
                  points: int = POINTS_PER_LANE) -> FaceRows:
    """The rows of ``tracks`` thinned to at most ``points`` per track: the first row in each of
    ``points`` equal slices of the video's duration (all rows where they are sparser than that)."""
    wanted = np.asarray(sorted(tracks), np.int64)
    seen: set[tuple[int, int]] = set()
    kept = []
    for rows in rows_chunks:
        rows = rows.take(np.isin(rows.track, wanted))
        slices = np.minimum((rows.time_s / max(duration_s, 1e-9) * points).astype(np.int64), points - 1)
        keep = np.zeros(len(rows), bool)
        for i, key in enumerate(zip(rows.track.tolist(), slices.tolist())):
            if key not in seen:
                seen.add(key)
                keep[i] = True
        kept.append(rows.take(keep))
    return FaceRows.concat(kept)


def _runs(time_s: np.ndarray) -> tuple[list[slice], float]:
    """Where a track's rows (sorted by time) run without a gap, and its usual step between rows."""
    steps = np.diff(time_s)
    step = float(np.median(steps)) if len(steps) else 0.0
    if step <= 0:
        step = 1.0 / 25
    breaks = np.flatnonzero(steps > GAP_STEPS * step) + 1
    edges = [0, *breaks.tolist(), len(time_s)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])], step


def _draw_lane(ax, rows: FaceRows, bottom: float) -> None:
    """One track's stacked smoothed probabilities; each row holds until the next (``step='post'``),
    the last one for one step."""
    order = np.argsort(rows.time_s, kind="stable")
    time_s, smoothed = rows.time_s[order], rows.smoothed[order].astype(np.float64)
    smoothed /= np.maximum(smoothed.sum(axis=1, keepdims=True), 1e-12)
    runs, step = _runs(time_s)
    for run in runs:
        t = np.append(time_s[run], time_s[run][-1] + step)
        stacked = np.vstack([np.zeros(len(t) - 1), np.cumsum(smoothed[run], axis=1).T])
        stacked = np.hstack([stacked, stacked[:, -1:]]) * LANE_FILL + bottom
        for k, name in enumerate(EMOTIONS):
            ax.fill_between(t, stacked[k], stacked[k + 1], step="post", color=EMOTION_COLOURS_RGB[name],
                            linewidth=0)


def plot_timeline(rows: FaceRows, video: VideoInfo, dest: Path, max_tracks: int = 12, *,
                  total_tracks: int | None = None) -> None:
    """Write the timeline PNG of ``rows`` to ``dest``: the ``max_tracks`` tracks seen on most rows,
    earliest at the top. ``total_tracks`` is the video's number of tracks when ``rows`` holds only
    some of them (``ResultsStore.finish`` passes the thinned rows of the longest); the title says
    how many are left out."""
    track_ids, counts = np.unique(rows.track, return_counts=True)
    chosen = longest_tracks(track_ids, counts, max_tracks)
    chosen.sort(key=lambda track: rows.time_s[rows.track == track].min())
    total = len(track_ids) if total_tracks is None else total_tracks
    width, height = timeline_size(len(chosen))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(timeline_title(Path(video.path).name, len(chosen), total))
    if chosen:
        for lane, track in enumerate(chosen):
            _draw_lane(ax, rows.take(rows.track == track), len(chosen) - 1 - lane)
        ax.set_yticks([len(chosen) - 1 - lane + LANE_FILL / 2 for lane in range(len(chosen))],
                      [f"#{track}" for track in chosen])
        ax.set_ylim(-(1 - LANE_FILL) / 2, len(chosen) - (1 - LANE_FILL) / 2)
    else:
        ax.text(0.5, 0.5, "No faces were found in this video", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
    ax.set_xlim(0, video.duration_s)
    ax.set_xlabel("time (s)")
    fig.legend(handles=[Patch(color=EMOTION_COLOURS_RGB[e], label=e) for e in EMOTIONS], loc="outside lower center",
               ncol=len(EMOTIONS), frameon=False)
    partial = partial_path(dest)
    fig.savefig(partial, format="png", dpi=DPI)
    os.replace(partial, dest)
    fsync_folder(dest.parent)
