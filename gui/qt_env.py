"""Where the windows can be shown, and Qt's own messages kept off the user's terminal.

Shared by ``fervid monitor`` and ``fervid app``: both promise one line on stderr for a problem,
and Qt, left alone, adds lines of its own (or aborts the process when there is no display).
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from PyQt5.QtCore import qInstallMessageHandler

QT_NOISE = ("propagateSizeHints", "XDG_RUNTIME_DIR not set")
"""Harmless warnings of the offscreen platform and of a root session without a runtime folder."""


def headless_problem(bounded: bool, hint: str) -> str | None:
    """On a Linux box without a display, a bounded run (a screenshot) renders offscreen and this
    returns None; an interactive window cannot be shown, and Qt would abort rather than say so,
    so this returns the reason (with ``hint``: how to run without a display)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    if bounded:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return None
    return f"no display to show the window on (set DISPLAY, or {hint})"


@contextlib.contextmanager
def quiet_qt_messages() -> Iterator[None]:
    """Drop Qt's known-harmless messages, pass every other one on to stderr; restores the
    previous handler on exit."""
    previous = None

    def handler(mode, context, message) -> None:
        if any(noise in message for noise in QT_NOISE):
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)
