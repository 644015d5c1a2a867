"""The embedded Ray of ``fervid up``, and the one ``fervid train --workers N`` starts without
``--address``, listen on 127.0.0.1 only (fervid/ray_loopback.py).

A real embedded Ray is started the way each command starts it (``connect(None)``;
``training.distributed.start_ray``), in a subprocess
because the test session has its own Ray (tests/services/ray_listeners_probe.py). It runs an actor
and a task, a second driver joins it by its address as ``fervid status`` does, and every listening
TCP socket and bound UDP socket of every process of that Ray, read from the operating system's
socket table, must be on a loopback address.
"""
from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.services.ray_listeners_probe import WORKER_ROLE


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def test_loopback_check_tells_loopback_from_wildcards_and_interfaces():
    assert all(map(is_loopback, ("127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.0.2")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.0.2.2", "::ffff:192.0.2.2", "fe80::1%eth0")))


@pytest.mark.parametrize("start", ["up", "train"])
def test_every_listener_of_the_embedded_ray_is_on_loopback(start):
    done = subprocess.run([sys.executable, "-m", "tests.services.ray_listeners_probe", start], cwd=REPO,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert (report["actor"], report["task"]) == (42, 2_000_000), report  # an actor, a task, the object store
    # The check sees every listener Ray records for the node, and the core workers' gRPC servers.
    roles = {s["role"] for s in report["sockets"] if s["kind"] == "tcp"}
    assert set(report["required"]) | {WORKER_ROLE} <= roles, report
    exposed = [s for s in report["sockets"] if not is_loopback(s["ip"])]
    assert exposed == [], json.dumps(exposed, indent=1)
    assert is_loopback(report["node_ip"]) and report["gcs_address"].startswith("127.0.0.1:"), report
    # A second driver joins by that 127.0.0.1 address (as `fervid status` does) and listens on loopback too.
    joined = report["joined"]
    assert isinstance(joined, dict) and joined["reply"] == 2 and joined["listening_on"], joined
    assert all(map(is_loopback, joined["listening_on"])), joined
