"""The allocator setting reaches every process of a Ray that fervid starts (services/allocator.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from fervid.services.allocator import ARENA_VARIABLE, DEFAULT_ARENAS, configure_allocator
from tests.conftest import REPO


def started_with(pid: int) -> str | None:
    """The MALLOC_ARENA_MAX a running process was started with (None: unset)."""
    with open(f"/proc/{pid}/environ", "rb") as handle:
        entries = handle.read().split(b"\0")
    prefix = ARENA_VARIABLE.encode() + b"="
    return next((e[len(prefix):].decode() for e in entries if e.startswith(prefix)), None)


def test_sets_the_cap_when_unset():
    environ: dict[str, str] = {"PATH": "/bin"}
    assert configure_allocator(environ) == DEFAULT_ARENAS
    assert environ == {"PATH": "/bin", ARENA_VARIABLE: DEFAULT_ARENAS}


def test_a_value_the_user_exported_wins():
    environ = {ARENA_VARIABLE: "8"}
    assert configure_allocator(environ) == "8"
    assert environ[ARENA_VARIABLE] == "8"


def test_the_session_ray_workers_run_with_the_cap(ray_session):
    """The test session starts its Ray the way `fervid up` does, so the soak measures the same setup."""
    import ray

    @ray.remote(num_cpus=0)
    class Probe:
        def pid(self) -> int:
            return os.getpid()

    probe = Probe.remote()
    try:
        pid = ray.get(probe.pid.remote(), timeout=60)
        assert started_with(pid) == os.environ[ARENA_VARIABLE]
    finally:
        ray.kill(probe)


EMBEDDED = """
import json, os, ray, psutil
from fervid.services.service import connect
from tests.services.test_allocator import started_with
started = connect(None, num_cpus=1)

@ray.remote(num_cpus=0)
class Probe:
    def pid(self):
        return os.getpid()

probe = Probe.remote()
worker = ray.get(probe.pid.remote(), timeout=60)
raylets = [p.pid for p in psutil.Process().children(recursive=True) if p.name() == "raylet"]
print(json.dumps({"started": started, "worker": started_with(worker),
                  "raylet": started_with(raylets[0]) if raylets else None}))
ray.shutdown()
"""


def _run_embedded(extra_env: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ARENA_VARIABLE}
    env.update(extra_env)
    done = subprocess.run([sys.executable, "-c", EMBEDDED], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("{")]
    found = json.loads(line)
    assert found.pop("started") is True
    return found


def test_embedded_ray_of_fervid_up_gives_raylet_and_workers_the_cap():
    """`fervid up` without an address: connect() starts Ray with the cap in its environment."""
    assert _run_embedded({}) == {"worker": DEFAULT_ARENAS, "raylet": DEFAULT_ARENAS}


def test_embedded_ray_keeps_the_users_value():
    assert _run_embedded({ARENA_VARIABLE: "4"}) == {"worker": "4", "raylet": "4"}
