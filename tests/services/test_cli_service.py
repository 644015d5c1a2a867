"""``fervid up`` as a user runs it: its own embedded Ray, stopping by itself or on a signal.

Each test starts a real ``fervid up`` process (a second, embedded Ray beside the test
session's) on free ports, and checks what the user sees and that nothing is left behind.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, SAMPLE_CLIP, run_fervid
from tests.services.service_helpers import free_port, sample_value, scrape, wait_for


def write_config(tmp_path, zmq_port: int, metrics_port: int, **extra) -> str:
    import yaml

    document = {"streams": [{"name": "sample", "source": str(SAMPLE_CLIP), "loop": True}],
                "publisher": {"endpoint": f"tcp://127.0.0.1:{zmq_port}"},
                "metrics": {"port": metrics_port}, "ray": {"num_cpus": 2}, "status_interval_s": 2.0, **extra}
    path = tmp_path / "fervid.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def port_is_free(port: int) -> bool:
    """Nothing listens on the port any more (connections are refused)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def start_up(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fervid.cli.main", "up", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ray_address_from(process: subprocess.Popen) -> str:
    """Read stderr until the line that names the embedded Ray's address."""
    for line in process.stderr:
        match = re.search(r"Ray address (\S+)\)", line)
        if match:
            return match.group(1)
    raise AssertionError("fervid up never printed its Ray address")


def test_up_runs_for_its_duration_and_stops_cleanly(tmp_path):
    zmq_port, metrics_port = free_port(), free_port()
    config = write_config(tmp_path, zmq_port, metrics_port)
    process = start_up("--config", config, "--duration", "25")
    try:
        address = ray_address_from(process)
        samples = wait_for(lambda: _scrape_or_none(metrics_port), 120, what="the metrics endpoint")
        wait_for(lambda: sample_value(scrape(metrics_port), "fervid_frames_processed_total", stream="sample") > 0,
                 60, what="frames to be processed")
        status = run_fervid("status", "--json", "--address", address, timeout=120)
        assert status.returncode == 0, status.stderr
        assert [s["name"] for s in json.loads(status.stdout)["streams"]] == ["sample"]
        # The address may come from RAY_ADDRESS instead of --address (the token must travel too).
        env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
        by_env = subprocess.run([sys.executable, "-m", "fervid.cli.main", "status", "--json"], cwd=REPO, text=True,
                                capture_output=True, timeout=120, env={**env, "RAY_ADDRESS": address})
        assert by_env.returncode == 0, by_env.stderr
        assert [s["name"] for s in json.loads(by_env.stdout)["streams"]] == ["sample"]
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert re.search(r"sample: up, [\d.]+ fps, \d+ processed", stdout), stdout
    assert "fervid up: stopped" in stderr
    assert "Traceback" not in stderr
    assert samples is not None
    assert port_is_free(metrics_port) and port_is_free(zmq_port), "a listener outlived fervid up"
    gone = run_fervid("status", "--address", address, timeout=120)
    assert gone.returncode == 2, "the embedded Ray must be gone after fervid up exits"


def _scrape_or_none(port: int):
    try:
        return scrape(port)
    except OSError:
        return None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_cleanly_on_a_signal(tmp_path, signum):
    zmq_port, metrics_port = free_port(), free_port()
    process = start_up("--config", write_config(tmp_path, zmq_port, metrics_port))
    try:
        ray_address_from(process)
        wait_for(lambda: _scrape_or_none(metrics_port), 120, what="the service to start")
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "fervid up: stopped" in stderr and "Traceback" not in stderr
    assert port_is_free(metrics_port) and port_is_free(zmq_port)


def test_up_refuses_a_port_in_use_before_starting_ray(tmp_path):
    zmq_port, metrics_port = free_port(), free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", metrics_port))
        busy.listen()
        started = time.monotonic()
        result = run_fervid("up", "--config", write_config(tmp_path, zmq_port, metrics_port), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"metrics port 127.0.0.1:{metrics_port} is already in use" in result.stderr
    assert time.monotonic() - started < 30, "a busy port must be reported before Ray starts"

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", zmq_port))
        busy.listen()
        result = run_fervid("up", "--config", write_config(tmp_path, zmq_port, metrics_port), timeout=120)
    assert result.returncode == 2 and "ZMQ endpoint" in result.stderr and "already in use" in result.stderr


def test_commands_without_a_service_say_so(ray_session):
    unreachable = run_fervid("status", "--address", f"127.0.0.1:{free_port()}", timeout=120)
    assert unreachable.returncode == 2
    assert unreachable.stderr.strip().count("\n") == 0 and "cannot reach a Ray cluster" in unreachable.stderr

    address = ray_session.get_runtime_context().gcs_address
    for args in (("status",), ("detach", "cam0"), ("attach", str(SAMPLE_CLIP), "--name", "x")):
        result = run_fervid(*args, "--address", address, timeout=120)
        assert result.returncode == 2, args
        assert "no fervid service is running" in result.stderr
        assert result.stderr.strip().count("\n") == 0


def test_bad_config_is_one_line_and_starts_nothing(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("streams:\n  - name: cam\n    sorce: x.mp4\n")
    result = run_fervid("up", "--config", str(config), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown key 'streams.0.sorce'" in result.stderr
