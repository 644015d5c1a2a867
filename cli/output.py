"""What ``fervid`` writes: one-line errors on stderr and, with ``--json``, one JSON document on stdout.

The ``--json`` contract is kept by construction rather than by care in each command: while a
``--json`` command runs, file descriptor 1 points at stderr, so whatever else would reach stdout
(Keras progress lines, a native library's prints, a child process such as a Ray worker) lands on
stderr, and only :func:`emit_json` writes to the real stdout.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TextIO

EXIT_USER_ERROR = 2

_document_out: TextIO | None = None
"""The real stdout while a ``--json`` command runs (None: ``sys.stdout``)."""


def error_line(command: str, message: object) -> str:
    """``fervid CMD: error: MESSAGE`` on one line, whatever line breaks the message holds."""
    return f"fervid {command}: error: {' '.join(str(message).split())}"


def print_error(command: str, message: object) -> None:
    print(error_line(command, message), file=sys.stderr, flush=True)


def emit_json(document: object) -> None:
    """Write the command's JSON document. Strict JSON: a NaN or an infinity is a bug and raises,
    it never reaches a reader as the invalid token ``NaN``."""
    out = _document_out or sys.stdout
    out.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    out.flush()


@contextlib.contextmanager
def json_document_mode(enabled: bool) -> Iterator[None]:
    """Reserve stdout for :func:`emit_json` (see the module docstring); a no-op when not enabled."""
    global _document_out
    if not enabled:
        yield
        return
    original = sys.stdout
    original.flush()
    stdout_fd = original.fileno()
    real = os.fdopen(os.dup(stdout_fd), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), stdout_fd)
    _document_out = real
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        original.flush()  # whatever was buffered in the old stdout object goes to stderr too
        os.dup2(real.fileno(), stdout_fd)
        _document_out = None
        real.close()
