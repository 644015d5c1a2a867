"""The ``fervid monitor`` and ``fervid app`` command lines, run as a user runs them.

Every problem is exactly one line, ``fervid CMD: error: ...``, and exit status 2; inputs are
checked before Qt starts (no Qt chatter) and before the monitor waits for frames.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import zlib

import pytest

from tests.conftest import REPO, TWO_PEOPLE, run_fervid
from tests.services.service_helpers import free_port


def assert_error_line(result, command: str, message: str) -> None:
    """Exit 2, nothing on stdout, stderr exactly ``fervid COMMAND: error: MESSAGE``."""
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"fervid {command}: error: {message}\n")


def png_claiming(path, side: int = 30_000):
    """A PNG of a few bytes whose header claims ``side`` x ``side`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_monitor_screenshot_needs_frames():
    result = run_fervid("monitor", "cam", "--screenshot", "out.png", timeout=120)
    assert_error_line(result, "monitor", "--screenshot and --frames go together")


def test_monitor_refuses_an_impossible_port_at_once():
    """Port 99999 was accepted, and the monitor waited 60 s for frames that could not come."""
    started = time.monotonic()
    result = run_fervid("monitor", "cam", "--endpoint", "tcp://127.0.0.1:99999", "--screenshot",
                        "x.png", "--frames", "1", timeout=50)
    assert_error_line(result, "monitor", "endpoint port must be in 1..65535, got 99999 in 'tcp://127.0.0.1:99999'")
    assert time.monotonic() - started < 30


def test_monitor_checks_the_screenshot_destination_before_waiting(tmp_path):
    """A screenshot under a file failed only after the frames came (or the 60 s wait ended)."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nobody publishes: without the check, a 60 s wait
    for shot, problem in [(a_file / "shot.png", f"{a_file} is a file, not a folder"),
                          (tmp_path / "shot.jpg", "the file name must end in .png"),
                          (tmp_path, "the file name must end in .png")]:
        result = run_fervid("monitor", "cam", "--endpoint", endpoint, "--screenshot", shot, "--frames", "1",
                            timeout=50)
        assert_error_line(result, "monitor", f"--screenshot {shot}: {problem}")


def test_monitor_without_a_display_says_so_with_the_prefix():
    """The monitor printed its own errors without ``fervid monitor: error:``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "fervid.cli.main", "monitor", "cam"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert_error_line(result, "monitor", "no display to show the window on (set DISPLAY, or use --screenshot "
                                         "PNG --frames N)")


def test_app_screenshot_of_an_uploaded_photo(tmp_path):
    shot = tmp_path / "app.png"
    result = run_fervid("app", "--image", TWO_PEOPLE, "--screenshot", shot, timeout=300)
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("make, problem", [
    (lambda d: (d / "notes.jpg", (d / "notes.jpg").write_text("not a picture")), "not an image (or an unsupported format)"),
    (lambda d: (d / "gone.jpg", None), "no such file"),
    (lambda d: (png_claiming(d / "bomb.png"), None), "too large to decode safely"),
], ids=["text", "missing", "bomb"])
def test_app_refuses_an_image_it_cannot_show_before_any_window(tmp_path, make, problem):
    """These ended with exit 1 and Qt's own lines on stderr; now one line, exit 2, no window."""
    image, _ = make(tmp_path)
    shot = tmp_path / "app.png"
    result = run_fervid("app", "--image", image, "--screenshot", shot, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"fervid app: error: {image}: {problem}"), line
    assert not shot.exists()


def test_app_refuses_an_unwritable_screenshot_before_any_window(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    shot = a_file / "app.png"
    result = run_fervid("app", "--image", TWO_PEOPLE, "--screenshot", shot, timeout=120)
    assert_error_line(result, "app", f"--screenshot {shot}: {a_file} is a file, not a folder")
