"""The app's windows for tests/gui: one recogniser per module (the session's classifier), shared by
every window, as the app shares one between upload, camera and analysis."""
from __future__ import annotations

import pytest

from fervid.gui.app import MainWindow
from fervid.gui.recognition_worker import SharedRecognizer
from fervid.models.recognizer import Recognizer


@pytest.fixture(scope="module")
def shared(classifier) -> SharedRecognizer:
    return SharedRecognizer(Recognizer(classifier))


@pytest.fixture
def window(qtbot, shared) -> MainWindow:
    win = MainWindow(recognizer=shared)
    qtbot.addWidget(win)  # closed at teardown: closeEvent stops a camera worker or an analysis
    win.show()
    return win
