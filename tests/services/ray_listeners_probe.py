"""Run by tests/services/test_ray_listeners.py in a subprocess: what an embedded Ray listens on.

``python -m tests.services.ray_listeners_probe [up|train]`` starts Ray as ``fervid up`` does
(``connect(None)``, the default) or as ``fervid train --workers N`` does without ``--address``
(``training.distributed.start_ray``), runs an actor and a task, lets a second driver join by the
Ray's address (``join ADDRESS``, what ``fervid status`` does), waits until every listener Ray
records for the node is up, and prints one JSON line: the replies, the node's address, and every
listening TCP socket and bound UDP socket of every process of that Ray (this process and its
descendants), each named by its role where Ray records the port.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import psutil
import ray

from fervid.services.runtime import NAMESPACE
from fervid.services.service import connect
from fervid.training.distributed import start_ray

STARTS = {"up": lambda: connect(None, num_cpus=1), "train": lambda: start_ray(None, num_cpus=1)}
"""How each command that starts a Ray of its own starts it; each returns True when it started one."""

ACTOR_NAME = "listener-probe"
WORKER_ROLE = "core worker gRPC (driver or worker)"
"""The role of a port that Ray does not record per node: each driver's and worker's own gRPC server."""

NODE_PORTS = {"NodeManagerPort": "raylet node manager", "ObjectManagerPort": "raylet object manager",
              "MetricsExportPort": "dashboard agent: Ray's Prometheus exporter",
              "MetricsAgentPort": "dashboard agent gRPC", "RuntimeEnvAgentPort": "runtime env agent HTTP"}
FIXED_PORTS = {44217: "autoscaler monitor's Prometheus exporter", 44227: "dashboard head's Prometheus exporter"}
"""Ray's fixed ports, taken only when free (another Ray on the machine may hold them), like the
dashboard agent's HTTP port (52365): listed when present, not waited for."""


@ray.remote(num_cpus=0)
class Echo:
    def ping(self, value: int) -> int:
        return value + 1


@ray.remote(num_cpus=1)
def size(blob: bytes) -> int:
    return len(blob)


def join(address: str) -> None:
    """The second driver: join by ``address``, call the actor, report where this process listens."""
    assert connect(address) is False
    reply = ray.get(ray.get_actor(ACTOR_NAME, namespace=NAMESPACE).ping.remote(1), timeout=120)
    listening = [c.laddr.ip for c in psutil.Process().net_connections("inet") if c.status == psutil.CONN_LISTEN]
    print(json.dumps({"reply": reply, "listening_on": listening}))


def joined_by_second_driver(address: str) -> dict | str:
    """What ``join`` reported from its own process, or why it did not."""
    try:
        done = subprocess.run([sys.executable, "-m", __spec__.name, "join", address], capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "the second driver did not connect within 120 s"
    return json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else done.stderr[-800:]


def sockets(roles: dict[int, str]) -> list[dict]:
    """Every listening TCP socket and bound UDP socket of this process and its descendants."""
    found = []
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            name, connections = process.name(), process.net_connections(kind="inet")
        except psutil.Error:  # a worker that exited meanwhile
            continue
        for c in connections:
            bound_udp = c.type == socket.SOCK_DGRAM and c.laddr
            kind = "tcp" if c.status == psutil.CONN_LISTEN else "udp" if bound_udp else None
            if kind:
                found.append({"process": name, "kind": kind, "ip": c.laddr.ip, "port": c.laddr.port,
                              "role": roles.get(c.laddr.port, WORKER_ROLE)})
    return found


def main(start: str) -> None:
    assert STARTS[start]() is True
    echo = Echo.options(name=ACTOR_NAME, namespace=NAMESPACE).remote()
    actor_reply = ray.get(echo.ping.remote(41), timeout=120)
    task_reply = ray.get(size.remote(ray.put(b"x" * 2_000_000)), timeout=120)
    gcs_address = ray.get_runtime_context().gcs_address
    joined = joined_by_second_driver(gcs_address)

    node = next(n for n in ray.nodes() if n["NodeID"] == ray.get_runtime_context().get_node_id())
    required = {int(gcs_address.rsplit(":", 1)[1]): "GCS"} | {node[key]: role for key, role in NODE_PORTS.items()}
    roles = {**FIXED_PORTS, node["DashboardAgentListenPort"]: "dashboard agent HTTP", **required}
    deadline = time.monotonic() + 90
    found = sockets(roles)
    while not set(required) <= {s["port"] for s in found} and time.monotonic() < deadline:
        time.sleep(1)
        found = sockets(roles)
    print(json.dumps({"actor": actor_reply, "task": task_reply, "joined": joined,
                      "node_ip": node["NodeManagerAddress"], "gcs_address": gcs_address,
                      "required": sorted(required.values()), "sockets": found}))
    ray.shutdown()


if __name__ == "__main__":
    if sys.argv[1:2] == ["join"]:
        join(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "up")
