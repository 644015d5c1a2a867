"""Helpers for tests that run the real service: free ports, scraping /metrics, subscribing."""
from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable

import zmq
from prometheus_client.parser import text_string_to_metric_families

from services.messages import StreamMessage, decode_message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A real HTTP scrape of /metrics, as {(sample name, sorted labels): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


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
