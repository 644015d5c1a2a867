"""``fervid up`` started as a background job of a script stops on SIGINT like on SIGTERM.

A non-interactive shell starts background jobs with SIGINT ignored, and Python then leaves it
ignored (it installs its KeyboardInterrupt handler only where SIGINT was at its default), so
``kill -INT`` did nothing and the service ran on. The test starts a real ``fervid up`` (its own
embedded Ray) with SIGINT ignored, as such a shell does.
"""
from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import REPO
from tests.services.service_helpers import free_port, scrape, wait_for
from tests.services.test_cli_service import port_is_free, ray_address_from, write_config

STOP_WITHIN_S = 120
"""Stopping takes the service down and shuts its Ray: seconds, far below this on any machine."""


def _metrics_up(port: int) -> bool:
    try:
        return bool(scrape(port))
    except OSError:
        return False


def test_up_started_with_sigint_ignored_still_stops_on_sigint(tmp_path):
    zmq_port, metrics_port = free_port(), free_port()
    config = write_config(tmp_path, zmq_port, metrics_port)
    process = subprocess.Popen(
        [sys.executable, "-m", "fervid.cli.main", "up", "--config", config], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # what `cmd &` in a script does
    try:
        ray_address_from(process)
        wait_for(lambda: _metrics_up(metrics_port), 120, what="the service to start")
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fervid up ignored SIGINT for {STOP_WITHIN_S} s") from None
    finally:
        if process.poll() is None:  # stop it cleanly (SIGTERM is handled), so its Ray goes too
            process.terminate()
            try:
                process.communicate(timeout=STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                process.kill()
    assert process.returncode == 0, stderr
    assert "fervid up: stopping" in stderr and "fervid up: stopped" in stderr and "Traceback" not in stderr
    assert port_is_free(metrics_port) and port_is_free(zmq_port)
