"""Load FER2013 (Kaggle CSV, plain or gzip) and the FER+ crowd votes.

Malformed input is reported with the file and the line number so a user can find it; nothing
is silently skipped except blank lines (no data in them) and a UTF-8 byte-order mark (spreadsheet
programs write one before the header). FER+ rows are aligned with FER2013 by position (the image
names in fer2013new.csv are not row indices) and the Usage column of both files must agree row by row.
"""
from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fervid.errors import FervidError
from fervid.media.files import check_regular_file
from fervid.models.labels import NUM_CLASSES
from fervid.models.preprocessing import FACE_SIZE

FER2013_HEADER: tuple[str, ...] = ("emotion", "pixels", "Usage")
PIXELS_PER_IMAGE: int = FACE_SIZE * FACE_SIZE
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
"""Kaggle's three Usage values. Other files in the same format name their splits as they like (another
dataset, a split of one's own), so any non-empty Usage is read, and ``--split`` selects rows by it."""


def _split_names(found: set[str]) -> str:
    return ", ".join(sorted(found)) or "none"

# fer2013new.csv vote columns, mapped to FER2013 class order (angry .. neutral).
FERPLUS_COLUMNS_IN_FER2013_ORDER: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


class DataError(FervidError):
    """A dataset file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Fer2013:
    """FER2013 rows: ``pixels`` (N x 48 x 48 uint8), ``labels`` (N,), ``usage`` (N,) strings.

    ``rows`` holds each sample's position in the file (0 = first data row), which is also its
    position in fer2013new.csv.
    """

    pixels: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, mask_or_index: np.ndarray) -> "Fer2013":
        """Return the subset picked by a boolean mask or an index array."""
        return Fer2013(self.pixels[mask_or_index], self.labels[mask_or_index],
                       self.usage[mask_or_index], self.rows[mask_or_index])

    def split(self, usage: str) -> "Fer2013":
        """Return the rows whose Usage column equals ``usage`` (an error naming the splits there are if none)."""
        mask = self.usage == usage
        if not mask.any():
            raise DataError(f"no rows with Usage {usage!r} in this file "
                            f"(its Usage values: {_split_names(set(self.usage.tolist()))})")
        return self.select(mask)


GZIP_MAGIC = b"\x1f\x8b"


def _open_text(path: Path) -> io.TextIOBase:
    """Open a CSV as text, unpacking gzip when the file starts with gzip's magic bytes.

    The content decides, not the name: ``DATA.CSV.GZ`` or a gzip without ``.gz`` is read as
    gzip, and a plain CSV named ``.gz`` as plain text. Only regular files are opened: a named
    pipe or a device would block or never end.
    """
    check_regular_file(path, "a CSV file", DataError)
    with open(path, "rb") as probe:
        packed = probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    if packed:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_rows(path: Path):
    """Yield ``(line_number, row)`` for each non-blank CSV row, turning read errors into DataError.

    Errors say how far the file was read, so a binary or damaged file points at its spot.
    """
    line = 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            for row in reader:
                line = reader.line_num
                if row:  # a blank line holds no data (an editor's trailing newline)
                    yield line, row
    except UnicodeDecodeError as exc:  # decoded in chunks: the bad byte lies after the last good row
        where = f"after line {line}" if line else "at the start"
        raise DataError(f"{path}: not a text CSV (byte 0x{exc.object[exc.start]:02x} {where} is not "
                        "UTF-8)") from None
    except csv.Error as exc:
        raise DataError(f"{path}:{line + 1}: malformed CSV ({exc})") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None


def load_fer2013(path: str | Path, usage: str | None = None, limit: int | None = None) -> Fer2013:
    """Read a FER2013 CSV (``emotion,pixels,Usage``), optionally only one Usage, at most ``limit`` rows.

    Every row is checked: label 0..6, exactly 2304 integers in 0..255, a non-empty Usage (any name:
    see ``USAGES``).
    """
    path = Path(path)
    labels: list[int] = []
    pixels: list[np.ndarray] = []
    usages: list[str] = []
    rows: list[int] = []
    splits_seen: set[str] = set()
    header_seen = False
    data_row = -1
    for line, row in _read_rows(path):
        if not header_seen:
            if tuple(cell.strip() for cell in row) != FER2013_HEADER:
                raise DataError(f"{path}:{line}: expected header 'emotion,pixels,Usage', "
                                f"got {','.join(row)[:60]!r}")
            header_seen = True
            continue
        data_row += 1
        if len(row) != 3:
            raise DataError(f"{path}:{line}: expected 3 columns, got {len(row)}")
        label_text, pixel_text, row_usage = row
        try:
            label = int(label_text)
        except ValueError:
            raise DataError(f"{path}:{line}: emotion {label_text!r} is not an integer") from None
        if not 0 <= label < NUM_CLASSES:
            raise DataError(f"{path}:{line}: emotion {label} is outside 0..{NUM_CLASSES - 1}")
        row_usage = row_usage.strip()
        if not row_usage:
            raise DataError(f"{path}:{line}: empty Usage")
        splits_seen.add(row_usage)
        if usage is not None and row_usage != usage:
            continue
        values = pixel_text.split()
        if len(values) != PIXELS_PER_IMAGE:
            raise DataError(f"{path}:{line}: expected {PIXELS_PER_IMAGE} pixel values, "
                            f"got {len(values)}")
        try:
            image = np.array(values, dtype=np.int32)
        except ValueError:
            raise DataError(f"{path}:{line}: pixels contain a non-integer value") from None
        except OverflowError:  # a value beyond int32, e.g. 99999999999
            raise DataError(f"{path}:{line}: pixel values must lie in 0..255") from None
        if image.min() < 0 or image.max() > 255:
            raise DataError(f"{path}:{line}: pixel values must lie in 0..255")
        labels.append(label)
        pixels.append(image.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE))
        usages.append(row_usage)
        rows.append(data_row)
        if limit is not None and len(labels) >= limit:
            break
    if not header_seen:
        raise DataError(f"{path}: the file is empty")
    if not labels:
        if usage and splits_seen:
            raise DataError(f"{path}: no rows with Usage {usage!r} (its Usage values: {_split_names(splits_seen)})")
        raise DataError(f"{path}: no data rows" + (f" with Usage {usage!r}" if usage else ""))
    return Fer2013(np.stack(pixels), np.array(labels, dtype=np.int64),
                   np.array(usages), np.array(rows, dtype=np.int64))


def load_ferplus_votes(path: str | Path, data: Fer2013) -> np.ndarray:
    """Return FER+ vote distributions (N x 7, rows sum to 1, FER2013 class order) for ``data``.

    Rows are matched by position and their Usage must agree. Rows where no annotator chose one
    of the seven classes (FER+ "not a face", or only contempt/unknown votes) come back as NaN,
    so callers can fall back to the FER2013 label.
    """
    path = Path(path)
    needed = int(data.rows.max()) + 1
    votes = np.zeros((needed, NUM_CLASSES), dtype=np.float32)
    usage = np.empty(needed, dtype=object)
    header: list[str] | None = None
    columns: list[int] = []
    count = 0
    for line, row in _read_rows(path):
        if header is None:
            header = [cell.strip() for cell in row]
            missing = [c for c in ("Usage", *FERPLUS_COLUMNS_IN_FER2013_ORDER) if c not in header]
            if missing:
                raise DataError(f"{path}:{line}: not a fer2013new.csv header (missing {', '.join(missing)})")
            columns = [header.index(c) for c in FERPLUS_COLUMNS_IN_FER2013_ORDER]
            usage_column = header.index("Usage")
            continue
        if count >= needed:
            break
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: expected {len(header)} columns, got {len(row)}")
        try:
            votes[count] = [float(row[c]) for c in columns]
        except ValueError:
            raise DataError(f"{path}:{line}: vote counts must be numbers") from None
        usage[count] = row[usage_column]
        count += 1
    if count < needed:
        raise DataError(f"{path}: has {count} rows but the FER2013 data needs {needed}")
    mismatch = np.nonzero(usage[data.rows] != data.usage)[0]
    if mismatch.size:
        first = int(data.rows[mismatch[0]])
        raise DataError(f"{path}: Usage disagrees with the FER2013 file at data row {first} "
                        "(the files are not aligned)")
    picked = votes[data.rows]
    totals = picked.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        distribution = picked / totals
    distribution[totals[:, 0] == 0] = np.nan
    return distribution


def validation_mask(labels: np.ndarray, fraction: float = 0.1, seed: int = 2013) -> np.ndarray:
    """A fixed, stratified slice of the Training rows used for model selection.

    PublicTest is never used to choose anything; it is only the reported figure.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for cls in np.unique(labels):
        idx = np.nonzero(labels == cls)[0]
        take = max(1, int(round(idx.size * fraction)))
        mask[rng.choice(idx, size=take, replace=False)] = True
    return mask
