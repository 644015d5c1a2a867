"""Helpers for tests that run the real service: free ports, scraping /metrics, subscribing."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import zmq

from fervid.benchmarks import metrics_delta
from fervid.benchmarks.metrics_delta import Samples
from fervid.benchmarks.service_run import free_port  # noqa: F401  (one free-port helper, used by the service tests)
from fervid.comms.messages import StreamMessage, decode_message


def scrape(port: int) -> Samples:
    """A real HTTP scrape of /metrics on loopback, as {(sample name, sorted labels): value}."""
    return metrics_delta.scrape(f"http://127.0.0.1:{port}/metrics")


def sample_value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll until ``condition()`` is truthy; returns its value or fails the test with ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Subscriber:
    """A real ZMQ SUB socket collecting decoded messages."""

    def __init__(self, endpoint: str, topics: tuple[str, ...] = ("",)):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        for topic in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def collect(self, seconds: float) -> list[StreamMessage]:
        messages = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.socket.poll(int(remaining * 1000) + 1):
                messages.append(decode_message(self.socket.recv_multipart()))
        return messages

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


# -- a running service (tests/services/test_service_end_to_end.py and tests/reliability) --------

@contextmanager
def running_service(ray_session, streams: list[dict], *, ready_timeout: float = 120, **sections: dict):
    """Start the real service on the session's Ray with ``streams`` (config dicts) and free loopback
    ports; ``sections`` are further config sections (``capture={...}``). Yields a dict with the
    controller, the ZMQ endpoint, the metrics port and the GCS address (for ``fervid --address``),
    once every stream has processed a few frames; stops the service afterwards."""
    from fervid.services.config import parse_config
    from fervid.services.service import start_service, stop_service

    ports = {"zmq": free_port(), "metrics": free_port()}
    raw = {"streams": streams, "publisher": {"endpoint": f"tcp://127.0.0.1:{ports['zmq']}"},
           "metrics": {"port": ports["metrics"]}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    config = parse_config(raw)
    controller = start_service(config)
    info = {"controller": controller, "endpoint": config.publisher.endpoint, "metrics_port": ports["metrics"],
            "address": ray_session.get_runtime_context().gcs_address, "streams": [s["name"] for s in streams]}
    try:
        wait_for(lambda: all(s.get("frames_processed", 0) > 5 for s in status(info)["streams"]), ready_timeout,
                 what="every stream to process frames")
        yield info
    finally:
        stop_service(controller)


def status(service: dict) -> dict:
    """The controller's status document (what ``fervid status --json`` prints)."""
    import ray

    return ray.get(service["controller"].status.remote(), timeout=30)


def stream_status(service: dict, name: str) -> dict:
    return next(s for s in status(service)["streams"] if s["name"] == name)


def processed(service: dict) -> dict[str, int]:
    return {s["name"]: s.get("frames_processed", 0) for s in status(service)["streams"]}


def pid_of(actor_name: str) -> int | None:
    """A service actor's process id, or None while Ray is restarting it."""
    import ray

    from fervid.services.runtime import NAMESPACE

    try:
        return ray.get(ray.get_actor(actor_name, namespace=NAMESPACE).pid.remote(), timeout=30)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ValueError):
        return None


def restarts_counted(port: int, kind: str) -> float:
    """``fervid_actor_restarts_total{kind}`` on /metrics (0 while the endpoint itself restarts)."""
    try:
        return sample_value(scrape(port), "fervid_actor_restarts_total", kind=kind)
    except OSError:
        return 0.0
