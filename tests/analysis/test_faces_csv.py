"""faces.csv (analysis.faces_csv): whole lines out, the same rows back in bounded chunks, and a bad
line named by file and line."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import COLUMNS, format_rows, header_line, read_all, read_rows
from fervid.errors import AnalysisOutputError
from fervid.models.labels import EMOTIONS, NUM_CLASSES
from tests.helpers.face_rows_factory import in_frame_order, track_rows


def random_rows(n: int, seed: int = 1) -> FaceRows:
    rng = np.random.default_rng(seed)
    frame = np.sort(rng.integers(0, 10_000, n))
    return FaceRows(frame, frame / 29.97, rng.integers(1, 50, n), rng.integers(0, 2000, (n, 4)),
                    rng.dirichlet(np.ones(NUM_CLASSES), n), rng.dirichlet(np.ones(NUM_CLASSES), n))


def write_csv(path, rows: FaceRows) -> None:
    path.write_text(header_line() + format_rows(rows), encoding="utf-8")


def test_round_trip_keeps_every_column_to_its_rounding(tmp_path):
    rows = random_rows(500)
    path = tmp_path / "faces.csv"
    write_csv(path, rows)
    back = read_all(path)
    assert len(back) == 500
    np.testing.assert_array_equal(back.frame, rows.frame)
    np.testing.assert_array_equal(back.track, rows.track)
    np.testing.assert_array_equal(back.boxes, rows.boxes)
    np.testing.assert_allclose(back.time_s, rows.time_s, atol=5.1e-5, rtol=0)
    np.testing.assert_allclose(back.probabilities, rows.probabilities, atol=6e-7, rtol=0)
    np.testing.assert_allclose(back.smoothed, rows.smoothed, atol=6e-7, rtol=0)


def test_columns_and_label_as_a_spreadsheet_reads_them(tmp_path):
    rows = in_frame_order(track_rows(1, range(0, 10, 2), 25.0, "happy"),
                          track_rows(2, range(0, 10, 2), 25.0, "sad", box=(5, 6, 7, 8)))
    path = tmp_path / "faces.csv"
    write_csv(path, rows)
    with path.open(newline="") as f:
        records = list(csv.DictReader(f))
    assert tuple(records[0]) == COLUMNS
    assert COLUMNS[:7] == ("frame", "time_s", "track", "x", "y", "w", "h")
    assert [r["label"] for r in records] == ["happy", "sad"] * 5
    second = records[1]
    assert (second["frame"], second["time_s"], second["track"]) == ("0", "0.0000", "2")
    assert [second[k] for k in ("x", "y", "w", "h")] == ["5", "6", "7", "8"]
    assert second["s_sad"] == "0.700000" and second["s_happy"] == "0.050000"
    assert [c for c in COLUMNS if c.startswith("p_")] == [f"p_{e}" for e in EMOTIONS]


def test_rows_stream_back_in_chunks_of_the_asked_size(tmp_path):
    rows = random_rows(10)
    path = tmp_path / "faces.csv"
    write_csv(path, rows)
    chunks = list(read_rows(path, chunk_rows=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([c.frame for c in chunks]), rows.frame)


def test_a_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text(header_line())
    assert list(read_rows(path)) == []
    assert len(read_all(path)) == 0


@pytest.mark.parametrize("damage", [lambda fields: fields[:-3],  # too few fields
                                    lambda fields: ["x1", *fields[1:]],  # frame not a number
                                    lambda fields: [*fields[:-1], "bored"]])  # unknown label
def test_a_bad_row_is_named_by_file_and_line(tmp_path, damage):
    path = tmp_path / "faces.csv"
    write_csv(path, random_rows(6))
    lines = path.read_text().splitlines()
    lines[4] = ",".join(damage(lines[4].split(",")))  # the 4th row: line 5 of the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnalysisOutputError, match=f"^{path}:5: bad row"):
        read_all(path)


def test_a_file_that_is_not_faces_csv_is_refused_at_line_one(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(AnalysisOutputError, match=f"^{path}:1: not a fervid faces.csv header"):
        read_all(path)
