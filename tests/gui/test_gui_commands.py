"""The ``fervid monitor`` and ``fervid app`` command lines, run as a user runs them."""
from __future__ import annotations

from tests.conftest import TWO_PEOPLE, run_fervid


def test_monitor_screenshot_needs_frames():
    result = run_fervid("monitor", "cam", "--screenshot", "out.png", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "go together" in result.stderr


def test_app_screenshot_of_an_uploaded_photo(tmp_path):
    shot = tmp_path / "app.png"
    result = run_fervid("app", "--image", TWO_PEOPLE, "--screenshot", shot, timeout=300)
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000


def test_app_reports_a_file_that_is_not_an_image(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a picture")
    result = run_fervid("app", "--image", fake, "--screenshot", tmp_path / "app.png", timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "not an image" in result.stderr.lower()
