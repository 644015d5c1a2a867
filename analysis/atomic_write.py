"""Files that appear whole or not at all: write beside the final name, then ``os.replace``.

A report, a manifest or an annotated video cut off by Ctrl-C, a crash or a full disk must never be
left under its final name, where a person (or a rerun) would take it for a finished one. Every
file of an analysis folder except faces.csv (which the manifest guards by its committed length) is
written to its ``partial_path`` first and renamed when complete; ``os.replace`` is atomic on one
file system, and the partial file sits in the same folder.
"""
from __future__ import annotations

import os
from pathlib import Path


def partial_path(path: Path) -> Path:
    """Where ``path`` is written before it is complete: hidden, same folder, same suffix (so that
    writers that pick a format by suffix, such as OpenCV and matplotlib, still do)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the folder's entry is data too)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` afterwards, or keeps what it held before."""
    partial = partial_path(path)
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    fsync_folder(path.parent)
