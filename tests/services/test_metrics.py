"""Metrics: per-actor buffers, the Prometheus registry they are applied to, scraped over real HTTP."""
from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from prometheus_client import start_http_server
from fervid.benchmarks.metrics_delta import parse_samples

from fervid.services.metrics import SERIES, MetricsBuffer, MetricsRegistry, MetricsShipper


def test_buffer_sums_counters_keeps_observations_and_overwrites_gauges():
    """Between shipments, counters add up, every histogram observation is kept, the last gauge wins."""
    buffer = MetricsBuffer()
    buffer.inc("fervid_frames_captured_total", stream="a")
    buffer.inc("fervid_frames_captured_total", 2, stream="a")
    buffer.inc("fervid_frames_captured_total", stream="b")
    buffer.observe("fervid_latency_seconds", 0.02, stream="a")
    buffer.observe("fervid_latency_seconds", 0.3, stream="a")
    buffer.observe("fervid_inference_batch_size", 16)
    buffer.set("fervid_stream_up", 1, stream="a")
    buffer.set("fervid_stream_up", 0, stream="a")
    batch = buffer.drain()
    assert dict(batch["inc"]) == {("fervid_frames_captured_total", (("stream", "a"),)): 3.0,
                                  ("fervid_frames_captured_total", (("stream", "b"),)): 1.0}
    assert dict(batch["observe"]) == {("fervid_latency_seconds", (("stream", "a"),)): [0.02, 0.3],
                                      ("fervid_inference_batch_size", ()): [16.0]}
    assert dict(batch["set"]) == {("fervid_stream_up", (("stream", "a"),)): 0.0}


def test_drain_resets_and_returns_none_when_nothing_happened():
    """An idle actor ships nothing (no Ray call every half second for nothing)."""
    buffer = MetricsBuffer()
    assert buffer.drain() is None
    buffer.inc("fervid_faces_total", stream="a")
    assert buffer.drain() is not None
    assert buffer.drain() is None


def test_labels_are_ordered_by_the_series_table():
    """Keyword order must not create two keys for the same series."""
    buffer = MetricsBuffer()
    buffer.inc("fervid_frames_dropped_total", stream="a", stage="detect")
    buffer.inc("fervid_frames_dropped_total", stage="detect", stream="a")
    assert dict(buffer.drain()["inc"]) == {
        ("fervid_frames_dropped_total", (("stream", "a"), ("stage", "detect"))): 2.0}


@pytest.mark.parametrize("call", [
    lambda b: b.inc("fervid_frames_captured_total"),
    lambda b: b.inc("fervid_frames_captured_total", stream="a", stage="x"),
    lambda b: b.observe("fervid_stage_seconds", 0.1, stream="a"),
    lambda b: b.set("fervid_stream_up", 1, camera="a"),
    lambda b: b.observe("fervid_inference_batch_size", 3, stream="a"),
])
def test_wrong_label_set_raises(call):
    """A wrong label set is a programming error caught at the call, not at scrape time."""
    buffer = MetricsBuffer()
    with pytest.raises(ValueError, match="takes labels"):
        call(buffer)
    assert buffer.drain() is None


def test_buffer_is_safe_under_concurrent_increments():
    """Capture, detect and publish threads of one actor record into the same buffer."""
    buffer = MetricsBuffer()

    def work():
        for _ in range(2000):
            buffer.inc("fervid_frames_captured_total", stream="a")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dict(buffer.drain()["inc"]) == {("fervid_frames_captured_total", (("stream", "a"),)): 8000.0}


@pytest.fixture
def scrape():
    """A real Prometheus endpoint on 127.0.0.1 for a registry; returns a function reading /metrics."""
    servers = []

    def serve(registry: MetricsRegistry):
        server, thread = start_http_server(0, addr="127.0.0.1", registry=registry.registry)
        servers.append((server, thread))
        port = server.server_address[1]

        def read() -> dict[tuple[str, tuple], float]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                assert response.status == 200
                text = response.read().decode()
            return parse_samples(text)
        return read

    yield serve
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_applied_buffers_are_scraped_over_http(scrape):
    """What actors ship reaches /metrics under the documented names and values."""
    registry = MetricsRegistry()
    read = scrape(registry)
    buffer = MetricsBuffer()
    buffer.inc("fervid_frames_captured_total", 3, stream="a")
    buffer.inc("fervid_frames_dropped_total", stream="a", stage="capture")
    buffer.observe("fervid_latency_seconds", 0.04, stream="a")
    buffer.observe("fervid_latency_seconds", 0.6, stream="a")
    buffer.observe("fervid_inference_batch_size", 16)
    buffer.set("fervid_stream_up", 1, stream="a")
    registry.apply(buffer.drain())
    buffer.inc("fervid_frames_captured_total", 2, stream="a")  # a second shipment adds up
    registry.apply(buffer.drain())

    samples = read()
    assert samples[("fervid_frames_captured_total", (("stream", "a"),))] == 5.0
    assert samples[("fervid_frames_dropped_total", (("stage", "capture"), ("stream", "a")))] == 1.0
    assert samples[("fervid_latency_seconds_count", (("stream", "a"),))] == 2.0
    assert samples[("fervid_latency_seconds_sum", (("stream", "a"),))] == pytest.approx(0.64)
    assert samples[("fervid_latency_seconds_bucket", (("le", "0.05"), ("stream", "a")))] == 1.0
    assert samples[("fervid_latency_seconds_bucket", (("le", "+Inf"), ("stream", "a")))] == 2.0
    assert samples[("fervid_inference_batch_size_count", ())] == 1.0
    assert samples[("fervid_inference_batch_size_bucket", (("le", "16.0"),))] == 1.0
    assert samples[("fervid_stream_up", (("stream", "a"),))] == 1.0


def test_every_series_in_the_table_is_exposed(scrape):
    """The table in metrics.py is the documented list: each name shows up once recorded."""
    registry = MetricsRegistry()
    read = scrape(registry)
    buffer = MetricsBuffer()
    for name, spec in SERIES.items():
        labels = {label: "x" for label in spec.labels}
        record = {"counter": buffer.inc, "gauge": buffer.set, "histogram": buffer.observe}[spec.kind]
        record(name, 1, **labels)
    registry.apply(buffer.drain())
    names = {name for name, _ in read()}
    for name, spec in SERIES.items():
        expected = name if spec.kind != "histogram" else f"{name}_count"
        assert expected in names, name


def test_forget_stream_removes_only_that_streams_series(scrape):
    """A detached stream disappears from dashboards; other streams and unlabelled series stay."""
    registry = MetricsRegistry()
    read = scrape(registry)
    buffer = MetricsBuffer()
    for stream in ("a", "ab", "b"):
        buffer.inc("fervid_frames_captured_total", stream=stream)
        buffer.inc("fervid_expressions_total", stream=stream, emotion="happy")
        buffer.observe("fervid_stage_seconds", 0.01, stream=stream, stage="detect")
        buffer.set("fervid_stream_up", 1, stream=stream)
    buffer.observe("fervid_inference_batch_size", 4)
    registry.apply(buffer.drain())

    registry.forget_stream("a")
    streams = {dict(labels).get("stream") for name, labels in read() if name.startswith("fervid_")}
    assert streams == {"ab", "b", None}  # None: the unlabelled batch histogram
    samples = read()
    assert samples[("fervid_frames_captured_total", (("stream", "ab"),))] == 1.0
    assert samples[("fervid_inference_batch_size_count", ())] == 1.0
    registry.forget_stream("never-attached")  # harmless


def test_shipper_ships_periodically_and_on_stop():
    """Measurements leave the actor every interval, and whatever is left when it stops."""
    buffer = MetricsBuffer()
    shipped: list[dict] = []
    shipper = MetricsShipper(buffer, shipped.append, interval_s=0.05)
    try:
        buffer.inc("fervid_faces_total", stream="a")
        deadline = time.monotonic() + 10
        while not shipped and time.monotonic() < deadline:
            time.sleep(0.01)
        assert shipped, "nothing shipped within 10 s at a 0.05 s interval"
        assert dict(shipped[0]["inc"]) == {("fervid_faces_total", (("stream", "a"),)): 1.0}
    finally:
        shipper.stop()

    slow = MetricsShipper(buffer, shipped.append, interval_s=3600)  # never ships by itself in this test
    buffer.inc("fervid_faces_total", 5, stream="a")
    count = len(shipped)
    slow.stop()
    assert len(shipped) == count + 1
    assert dict(shipped[-1]["inc"]) == {("fervid_faces_total", (("stream", "a"),)): 5.0}


def test_shipper_survives_a_failing_send():
    """The metrics actor may be restarting: a failed shipment is dropped and shipping goes on."""
    buffer = MetricsBuffer()
    calls: list[dict] = []

    def send(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise ConnectionError("metrics actor is restarting")

    shipper = MetricsShipper(buffer, send, interval_s=0.05)
    try:
        buffer.inc("fervid_faces_total", stream="a")
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        buffer.inc("fervid_faces_total", 2, stream="a")
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) >= 2
        assert dict(calls[1]["inc"]) == {("fervid_faces_total", (("stream", "a"),)): 2.0}
    finally:
        shipper.stop()


def test_every_series_is_documented_for_operators():
    """The metric tables in docs/architecture.md and docs/monitoring.md name every series in SERIES."""
    import re

    from tests.conftest import REPO

    for doc in ("docs/architecture.md", "docs/monitoring.md"):
        listed = set(re.findall(r"^\| `(fervid_\w+)` \|", (REPO / doc).read_text(), re.M))
        assert set(SERIES) <= listed, f"{doc} lacks {sorted(set(SERIES) - listed)}"
