"""Refuse what is not a regular file before opening it, with one wording for every reader.

Opening a named pipe blocks until a writer comes (for ever, for ``fervid predict``), a device such
as /dev/zero never ends, and a folder fails with a message that names the wrong problem. Image and
CSV readers check here first and raise their own error type with the same words.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from fervid.errors import FervidError


def check_regular_file(path: str | Path, expected: str, error: type[FervidError]) -> None:
    """Raise ``error`` in one line unless ``path`` is a regular file; ``expected`` names what it
    should have been ("an image file", "a CSV file")."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot open ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a directory, not {expected}")
    if not stat.S_ISREG(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise error(f"{path}: is {kind}, not {expected}")
