"""faces.csv: one row per face per analysed frame, the file a person opens in a spreadsheet or pandas.

Columns: ``frame,time_s,track,x,y,w,h``, the seven raw probabilities ``p_angry..p_neutral``, the
seven smoothed ones ``s_angry..s_neutral`` and ``label`` (the class of the smoothed row: what the
annotated video writes on the box). Probabilities keep 6 decimals (as JSON documents and messages
do, ``fervid.models.faces.ROUND_DIGITS``) and times 4 (a tenth of a millisecond: frames are tens of
milliseconds apart).

The file is written in whole lines only (``format_rows``) and read back in bounded chunks
(``read_rows``): the summary, the timeline and the annotated video all stream it, so an hour of
video never has to fit in memory. A line that does not parse is named by file and line: the file
is meant to be read by people and their tools, and it may have been edited.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fervid.analysis.face_rows import FaceRows
from fervid.errors import AnalysisOutputError
from fervid.models.faces import ROUND_DIGITS
from fervid.models.labels import EMOTIONS, NUM_CLASSES

TIME_DIGITS = 4
COLUMNS: tuple[str, ...] = ("frame", "time_s", "track", "x", "y", "w", "h",
                            *(f"p_{name}" for name in EMOTIONS), *(f"s_{name}" for name in EMOTIONS), "label")
CHUNK_ROWS = 50_000
"""Rows per chunk when streaming the file back: a few MiB of arrays, whatever the video's length."""

_RAW = slice(7, 7 + NUM_CLASSES)
_SMOOTHED = slice(7 + NUM_CLASSES, 7 + 2 * NUM_CLASSES)


def header_line() -> str:
    """The first line of every faces.csv."""
    return ",".join(COLUMNS) + "\n"


def format_rows(rows: FaceRows) -> str:
    """``rows`` as whole CSV lines (no header), each ending in a newline."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    probability = f"{{:.{ROUND_DIGITS}f}}".format
    time = f"{{:.{TIME_DIGITS}f}}".format
    for frame, time_s, track, box, raw, smoothed, label in zip(
            rows.frame.tolist(), rows.time_s.tolist(), rows.track.tolist(), rows.boxes.tolist(),
            rows.probabilities.tolist(), rows.smoothed.tolist(), rows.labels):
        writer.writerow([frame, time(time_s), track, *box, *map(probability, raw), *map(probability, smoothed),
                         label])
    return out.getvalue()


def _parse(line: list[str]) -> tuple:
    if len(line) != len(COLUMNS):
        raise ValueError(f"{len(line)} fields, expected {len(COLUMNS)}")
    if line[-1] not in EMOTIONS:
        raise ValueError(f"label {line[-1]!r} is not one of {', '.join(EMOTIONS)}")
    return (int(line[0]), float(line[1]), int(line[2]), [int(v) for v in line[3:7]],
            [float(v) for v in line[_RAW]], [float(v) for v in line[_SMOOTHED]])


def _chunk(parsed: list[tuple]) -> FaceRows:
    frame, time_s, track, boxes, raw, smoothed = zip(*parsed)
    return FaceRows(np.array(frame), np.array(time_s), np.array(track), np.array(boxes), np.array(raw),
                    np.array(smoothed))


def read_rows(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[FaceRows]:
    """The rows of the faces.csv at ``path``, in file order, ``chunk_rows`` at a time (the last chunk
    may be shorter; a file with only its header yields nothing). ``AnalysisOutputError`` names the
    file and line of a header or row that does not parse."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(header) != COLUMNS:
                raise AnalysisOutputError(f"{path}:1: not a fervid faces.csv header")
            parsed: list[tuple] = []
            for line in reader:
                try:
                    parsed.append(_parse(line))
                except ValueError as exc:
                    raise AnalysisOutputError(f"{path}:{reader.line_num}: bad row ({exc})") from None
                if len(parsed) == chunk_rows:
                    yield _chunk(parsed)
                    parsed = []
            if parsed:
                yield _chunk(parsed)
    except csv.Error as exc:
        raise AnalysisOutputError(f"{path}:{reader.line_num}: bad row ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalysisOutputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def read_all(path: Path) -> FaceRows:
    """Every row of a faces.csv at once (for tests and short videos; streams use ``read_rows``)."""
    return FaceRows.concat(list(read_rows(path)))
