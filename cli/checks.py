"""Checks of the command line's own arguments, made before any slow work starts.

A PNG destination is checked before the minutes of evaluation, or the wait for a stream's
frames, that come before writing it: a run that ends in "cannot write" after all its work
wastes the work, and a traceback from matplotlib or Qt says less than one line here.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from fervid.errors import FervidError


def check_png_destination(path: Path | None, flag: str) -> None:
    """Refuse a PNG path that cannot be written: wrong suffix, a folder, or a folder that is
    missing, is a file or is not writable. ``None`` (the flag not given) passes."""
    if path is None:
        return
    if path.suffix.lower() != ".png":
        raise FervidError(f"{flag} {path}: the file name must end in .png")
    if path.is_dir():
        raise FervidError(f"{flag} {path}: is a folder, not a file name")
    folder = path.parent
    if not folder.exists():
        raise FervidError(f"{flag} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise FervidError(f"{flag} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FervidError(f"{flag} {path}: folder {folder} is not writable")


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above zero (``nan``, ``inf``, 0 and below are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}")
    return value


def check_out_folder(path: Path, flag: str = "--out") -> None:
    """Refuse a results folder that could not be created or written, before any work: a file, or a
    missing folder whose nearest existing ancestor is a file or not writable. Nothing is created here."""
    if path.exists() and not path.is_dir():
        raise FervidError(f"{flag} {path}: is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FervidError(f"{flag} {path}: cannot be created, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FervidError(f"{flag} {path}: {existing} is not writable")
