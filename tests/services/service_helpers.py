"""Helpers for tests that run the real service: free ports, scraping /metrics, subscribing."""
from __future__ import annotations

import time
from collections.abc import Callable

import zmq

from benchmarks import metrics_delta
from benchmarks.metrics_delta import Samples
from benchmarks.service_run import free_port  # noqa: F401  (one free-port helper, used by the service tests)
from services.messages import StreamMessage, decode_message


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
