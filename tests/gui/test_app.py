"""The desktop app with real media: uploads, saving, bad files, and live recognition of a video.

The shipped classifier is loaded once per session (``classifier`` fixture) and shared by every
window, as the app shares one recogniser between upload and camera.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtGui import QColor, QImage

from fervid.models.annotate import EMOTION_COLOURS_BGR
from fervid.gui.app import AppError, MainWindow, run_app
from fervid.gui.recognition_worker import SharedRecognizer
from fervid.media.image_io import load_image
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from fervid.models.recognizer import Recognizer
from tests.conftest import SAMPLE_CLIP, TWO_PEOPLE

WAIT_MS = 60_000
"""Generous: the first call traces the model, and the test box may be busy."""



def upload(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.annotation_shown, timeout=WAIT_MS):
        window.upload_image(path)


def upload_expecting_error(qtbot, window: MainWindow, path: Path) -> str:
    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as blocker:
        window.upload_image(path)
    qtbot.waitUntil(lambda: window.mode == "idle", timeout=WAIT_MS)
    return blocker.args[0]


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + chunk(b"IEND", b""))


def tells_tracks_apart(faces: Faces) -> bool:
    """Whether a table of ``faces`` shows tracking: a track id that is not the row number, and
    smoothed rows that are not the last frame's (a track's first frame has both the same)."""
    return (faces.track_ids is not None and any(track != row + 1 for row, track in enumerate(faces.track_ids))
            and not np.allclose(faces.smoothed, faces.probabilities, atol=1e-4))


def assert_idle(window: MainWindow) -> None:
    assert window.mode == "idle"
    assert window.start_button.isEnabled() and window.upload_button.isEnabled()
    assert not window.stop_button.isEnabled()
    assert window.camera is None


# -- upload and save -------------------------------------------------------------------------
def test_upload_shows_each_face_with_its_probabilities_and_box_colour(qtbot, window):
    upload(qtbot, window, TWO_PEOPLE)

    table = window.face_table
    assert table.rowCount() == 2 and len(window.faces) == 2
    pixels = window.image_view.full_pixmap().toImage()
    original = load_image(TWO_PEOPLE)
    assert (pixels.width(), pixels.height()) == (original.shape[1], original.shape[0])
    for row, box in enumerate(window.faces.boxes):
        probabilities = table.probabilities(row)
        assert list(probabilities) == list(EMOTIONS)
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        emotion = max(probabilities, key=probabilities.get)
        assert emotion == window.faces.emotions[row]
        assert table.item(row, 1).text().startswith(emotion)
        x, y, w, h = (int(v) for v in box)
        b, g, r = EMOTION_COLOURS_BGR[emotion]
        assert QColor(pixels.pixel(x, y + h // 2)) == QColor(r, g, b), "left edge of the box"
        assert QColor(pixels.pixel(x + w // 2, y + h)) == QColor(r, g, b), "bottom edge of the box"
    assert not window.status_is_error and "2 faces" in window.status_label.text()
    assert window.save_button.isEnabled()
    assert_idle(window)


def test_an_upload_is_one_whole_scan_without_tracks(qtbot, window):
    """A still image has no neighbours in time: no track ids, no smoothing, rows numbered."""
    upload(qtbot, window, TWO_PEOPLE)

    assert window.faces.track_ids is None and window.faces.smoothed is None
    assert [window.face_table.item(row, 0).text().split()[0] for row in range(2)] == ["#1", "#2"]


def test_save_writes_the_annotated_image(qtbot, window, tmp_path):
    upload(qtbot, window, TWO_PEOPLE)

    written = window.save_annotated(tmp_path / "annotated")  # no extension: saved as PNG
    assert written == tmp_path / "annotated.png" and written.is_file()
    saved, original = load_image(written), load_image(TWO_PEOPLE)
    assert saved.shape == original.shape
    assert np.array_equal(saved, window.annotated), "PNG is lossless: exactly what is shown"
    assert np.count_nonzero(np.any(saved != original, axis=2)) > 1000, "boxes and labels drawn"
    assert not window.status_is_error

    assert window.save_annotated(tmp_path / "no" / "such" / "dir" / "x.png") is None
    assert window.status_is_error and "Cannot save" in window.status_label.text()
    assert window.save_annotated(tmp_path / "x.notaformat") is None
    assert window.status_is_error


def test_a_text_file_named_jpg_is_an_error_in_the_window_and_the_app_stays_usable(qtbot, window, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("these are not the pixels you are looking for\n")

    message = upload_expecting_error(qtbot, window, fake)
    assert "not an image" in message and "holiday.jpg" in message
    assert window.status_is_error and window.status_label.text() == message
    assert window.face_table.rowCount() == 0 and not window.save_button.isEnabled()
    assert_idle(window)

    upload(qtbot, window, TWO_PEOPLE)  # still usable
    assert window.face_table.rowCount() == 2 and not window.status_is_error


def test_a_decompression_bomb_is_refused_with_a_message(qtbot, window, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(30_000, 30_000))
    assert bomb.stat().st_size < 1000

    message = upload_expecting_error(qtbot, window, bomb)
    assert "too large" in message and "bomb.png" in message
    assert window.status_is_error
    assert_idle(window)


# -- camera ----------------------------------------------------------------------------------
def test_camera_on_the_sample_clip_shows_faces_live_then_stops(qtbot, window):
    window.source_edit.setText(str(SAMPLE_CLIP))
    window.start_button.click()
    worker = window.camera
    assert worker is not None and window.stop_button.isEnabled()
    assert not window.upload_button.isEnabled() and not window.start_button.isEnabled()

    qtbot.waitUntil(lambda: window.face_table.rowCount() >= 1 and tells_tracks_apart(window.faces),
                    timeout=WAIT_MS)
    assert window.annotated is not None and window.annotated.shape == (360, 640, 3)
    assert worker.frames_processed >= 1
    assert not window.status_is_error
    faces, table = window.faces, window.face_table
    assert faces.track_ids is not None and faces.smoothed is not None, "a video is tracked"
    for row, track in enumerate(faces.track_ids):
        assert table.item(row, 0).text().startswith(f"#{track} at"), "named by its track"
        assert list(table.probabilities(row).values()) == pytest.approx(faces.smoothed[row].tolist()), \
            "the smoothed rows, which the label comes from"
        assert table.item(row, 1).text().startswith(faces.emotions[row])

    window.stop_button.click()
    qtbot.waitUntil(lambda: window.camera is None, timeout=WAIT_MS)
    assert worker.isFinished()
    assert_idle(window)
    assert not window.status_is_error
    assert window.save_button.isEnabled(), "the last frame can be saved"


def test_closing_the_window_stops_the_camera(qtbot, shared):
    win = MainWindow(recognizer=shared)
    qtbot.addWidget(win)
    win.show()
    assert win.start_camera(str(SAMPLE_CLIP))
    worker = win.camera
    with qtbot.waitSignal(win.annotation_shown, timeout=WAIT_MS):
        pass
    win.close()
    assert worker.isFinished()


def test_a_missing_video_file_is_an_error_at_once(qtbot, window, tmp_path):
    assert not window.start_camera(str(tmp_path / "no_such_clip.mp4"))
    assert window.status_is_error and "no_such_clip.mp4" in window.status_label.text()
    assert_idle(window)


@pytest.mark.parametrize("kind", ["device", "not_a_video"])
def test_a_source_that_cannot_be_opened_is_an_error_not_a_silent_retry(qtbot, window, tmp_path, kind):
    if kind == "device":
        source, shown = "99", "device 99"
    else:
        fake = tmp_path / "clip.mp4"
        fake.write_bytes(b"\0" * 2048)
        source, shown = str(fake), "clip.mp4"

    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as blocker:
        assert window.start_camera(source)
    assert "Cannot" in blocker.args[0] and shown in blocker.args[0]
    qtbot.waitUntil(lambda: window.camera is None, timeout=WAIT_MS)
    assert_idle(window)
    assert window.status_is_error, "the reason stays on screen"

    upload(qtbot, window, TWO_PEOPLE)  # still usable
    assert window.face_table.rowCount() == 2


# -- run_app (used by `fervid app --screenshot`) -----------------------------------------------
def test_run_app_screenshot_of_an_uploaded_image(qtbot, shared, tmp_path):
    shot = tmp_path / "app.png"
    assert run_app(TWO_PEOPLE, shot, recognizer=shared) == 0
    image = QImage(str(shot))
    assert not image.isNull() and image.width() > 300 and image.height() > 200


def test_run_app_screenshot_reports_a_bad_image(qtbot, shared, tmp_path, capsys):
    """Raised, not printed: ``fervid app`` prints it as its one ``fervid app: error:`` line."""
    fake = tmp_path / "fake.png"
    fake.write_text("nope")
    shot = tmp_path / "app.png"
    with pytest.raises(AppError, match="^" + str(fake) + ": not an image"):
        run_app(fake, shot, recognizer=shared)
    assert capsys.readouterr().err == ""
    assert shot.is_file(), "the window with its error is still captured"


# -- the shared model ------------------------------------------------------------------------
def test_the_model_loads_in_the_background_once_for_upload_and_camera(qtbot, classifier):
    loads = []

    def factory() -> Recognizer:
        loads.append(1)
        return Recognizer(classifier)

    win = MainWindow(recognizer=SharedRecognizer(factory=factory))
    qtbot.addWidget(win)
    win.show()
    assert win.status_label.text() == "Loading the model…" and win.upload_button.isEnabled()
    with qtbot.waitSignal(win.model_ready, timeout=WAIT_MS):
        pass
    assert win.status_label.text() == "Ready."

    upload(qtbot, win, TWO_PEOPLE)
    assert win.start_camera(str(SAMPLE_CLIP))
    qtbot.waitUntil(lambda: win.camera is not None and win.camera.frames_processed >= 1, timeout=WAIT_MS)
    win.stop_camera()
    qtbot.waitUntil(lambda: win.camera is None, timeout=WAIT_MS)
    assert loads == [1]


def test_a_model_that_cannot_load_is_an_error_in_the_window(qtbot):
    from fervid.errors import ModelLoadError

    def factory() -> Recognizer:
        raise ModelLoadError("model file /nowhere/model.keras not found")

    win = MainWindow(recognizer=SharedRecognizer(factory=factory))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as blocker:
        pass
    assert "cannot load the model" in blocker.args[0] and "/nowhere/model.keras" in blocker.args[0]
    message = upload_expecting_error(qtbot, win, TWO_PEOPLE)
    assert "/nowhere/model.keras" in message
    assert_idle(win)
