"""The real service on a real Ray: three streams of the sample clip, ZMQ out, /metrics scraped.

One service runs for the whole module (starting actors costs seconds on this box); each test
checks one promise against it. Faults (SIGKILLed actors, vanishing sources, a camera that stops)
are in tests/reliability/test_faults.py.
"""
from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from fervid.models.labels import EMOTIONS
from tests.conftest import SAMPLE_CLIP, run_fervid
from tests.services.service_helpers import (Subscriber, running_service, sample_value, scrape, status,
                                            stream_status, wait_for)

STREAMS = ("cam0", "cam1", "cam2")
SETTLE_S = 1.0
"""Time for a new subscription to reach the publisher and a publish result to tell the capture."""


@pytest.fixture(scope="module")
def service(ray_session):
    with running_service(ray_session, [{"name": name, "source": str(SAMPLE_CLIP), "loop": True} for name in STREAMS],
                         inference={"max_wait_ms": 40},
                         capture={"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "stuck_timeout_s": 4.0}) as info:
        yield info


def test_subscriber_gets_in_order_valid_messages_for_every_stream(service):
    subscriber = Subscriber(service["endpoint"])
    try:
        messages = subscriber.collect(8.0)
    finally:
        subscriber.close()
    by_stream = {name: [m for m in messages if m.stream == name] for name in STREAMS}
    faces = 0
    for name, received in by_stream.items():
        assert len(received) >= 10, f"{name}: only {len(received)} messages in 8 s"
        seqs = [m.seq for m in received]
        assert seqs == sorted(set(seqs)), f"{name}: messages out of order or repeated"
        # The capture actor encodes once a publish result says the stream is watched, so the
        # frames already in flight when the subscriber arrived (at most max_in_flight + 1) go
        # without a picture; from then on every message carries one.
        unpictured = next(i for i, m in enumerate(received) if m.jpeg)
        assert unpictured <= 4, f"{name}: {unpictured} messages without a JPEG after subscribing"
        for message in received[unpictured:]:
            assert message.jpeg, "a watched stream must carry its JPEG frame"
            image = cv2.imdecode(np.frombuffer(message.jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[:2] == (message.height, message.width)
            assert message.ts_capture <= message.ts_publish
            for face in message.faces.to_records():
                x, y, w, h = face["box"]
                assert 0 <= x and 0 <= y and w > 0 and h > 0
                assert x + w <= message.width and y + h <= message.height
                assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
                shown = face.get("smoothed", face["probabilities"])  # tracked faces show the smoothed label
                assert face["emotion"] == max(shown, key=shown.get)
                assert face["emotion"] in EMOTIONS
            faces += len(message.faces)
    assert faces > 0, "the sample clip shows faces; none were published"


def test_metrics_describe_every_stream_and_stage(service):
    samples = scrape(service["metrics_port"])
    for name in STREAMS:
        assert sample_value(samples, "fervid_frames_captured_total", stream=name) > 0
        assert sample_value(samples, "fervid_frames_processed_total", stream=name) > 0
        assert sample_value(samples, "fervid_faces_total", stream=name) > 0
        assert sample_value(samples, "fervid_latency_seconds_count", stream=name) > 0
        assert sample_value(samples, "fervid_stream_up", stream=name) == 1.0
        for stage in ("detect", "infer", "publish"):
            assert sample_value(samples, "fervid_stage_seconds_count", stream=name, stage=stage) > 0
        emotions = sum(sample_value(samples, "fervid_expressions_total", stream=name, emotion=e) for e in EMOTIONS)
        assert emotions == sample_value(samples, "fervid_faces_total", stream=name)


def test_inference_batches_faces_across_streams(service):
    samples = scrape(service["metrics_port"])
    total = sample_value(samples, "fervid_inference_batch_frames_count")
    single = sample_value(samples, "fervid_inference_batch_frames_bucket", le="1.0")
    assert total > 0
    assert single < total, "no model call ever held frames from more than one call site"
    faces_single = sample_value(samples, "fervid_inference_batch_size_bucket", le="1.0")
    assert faces_single < sample_value(samples, "fervid_inference_batch_size_count")


def test_only_watched_streams_are_jpeg_encoded(service):
    """With one subscriber on cam0, cam1 and cam2 keep being processed but never encoded."""
    subscribed_at = time.time()
    subscriber = Subscriber(service["endpoint"], topics=("cam0",))
    try:
        time.sleep(1.5)  # the subscription reaches the publisher, and the capture learns of it
        before = scrape(service["metrics_port"])
        messages = subscriber.collect(4.0)
        after = scrape(service["metrics_port"])
    finally:
        subscriber.close()
    assert messages and all(m.stream == "cam0" for m in messages)

    def grew(name: str, stream: str) -> float:
        return sample_value(after, name, stream=stream) - sample_value(before, name, stream=stream)

    # A frame's picture is decided when it is read. Frames read before the capture learnt of this
    # subscription may go either way: the previous test's subscriber watched every stream until it
    # left, and the subscriber's queue keeps what arrived during the sleep. Every frame read once the
    # subscription had settled (SETTLE_S after it, on the test's clock, which is the capture's) has one.
    settled = [m for m in messages if m.ts_capture >= subscribed_at + SETTLE_S]
    seen = ([(m.seq, round(m.ts_capture - subscribed_at, 2), bool(m.jpeg)) for m in messages], "stalls",
            grew("fervid_stream_stalls_total", "cam0"), "capture restarts",
            sample_value(after, "fervid_actor_restarts_total", kind="capture")
            - sample_value(before, "fervid_actor_restarts_total", kind="capture"))
    assert settled and all(m.jpeg for m in settled), seen

    assert grew("fervid_frames_encoded_total", "cam0") > 0
    assert sample_value(after, "fervid_stream_watched", stream="cam0") == 1.0
    for name in ("cam1", "cam2"):
        assert grew("fervid_frames_processed_total", name) > 0
        assert grew("fervid_frames_encoded_total", name) == 0, f"{name} was encoded with nobody watching"
        assert sample_value(after, "fervid_stream_watched", stream=name) == 0.0


def test_cli_status_attach_and_detach_at_run_time(service):
    address = service["address"]
    result = run_fervid("status", "--json", "--address", address, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {s["name"] for s in document["streams"]} >= set(STREAMS)
    # 2 detectors x 2 frames shared by 3 streams: 2 each; a 4th stream brings everyone to 1.
    assert document["detectors"] == 2
    wait_for(lambda: all(s.get("max_in_flight") == 2 for s in status(service)["streams"]), 10,
             what="each of 3 streams to get 2 frames in flight")

    result = run_fervid("attach", str(SAMPLE_CLIP), "--name", "extra", "--loop", "--address", address, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "attached extra" in result.stdout
    wait_for(lambda: stream_status(service, "extra").get("frames_processed", 0) > 3, 60,
             what="the attached stream to flow")
    wait_for(lambda: [s.get("max_in_flight") for s in status(service)["streams"]] == [1] * 4, 10,
             what="the pipeline's share to be rebalanced over 4 streams")

    duplicate = run_fervid("attach", str(SAMPLE_CLIP), "--name", "extra", "--address", address, timeout=120)
    assert duplicate.returncode == 2
    assert duplicate.stderr.strip().count("\n") == 0 and "already attached" in duplicate.stderr

    unknown_source = run_fervid("attach", "/nonexistent/clip.mp4", "--name", "ghost", "--address", address,
                                timeout=120)
    assert unknown_source.returncode == 2
    assert unknown_source.stderr.strip().count("\n") == 0 and "not an existing file" in unknown_source.stderr

    result = run_fervid("detach", "extra", "--address", address, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "extra" not in {s["name"] for s in status(service)["streams"]}
    wait_for(lambda: all(s.get("max_in_flight") == 2 for s in status(service)["streams"]), 10,
             what="the share to grow back after the detach")
    samples = wait_for(lambda: (s := scrape(service["metrics_port"])) and
                       sample_value(s, "fervid_frames_captured_total", stream="extra") == 0 and s, 10,
                       what="the detached stream's series to disappear")
    assert sample_value(samples, "fervid_frames_captured_total", stream="cam0") > 0

    unknown = run_fervid("detach", "extra", "--address", address, timeout=120)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().count("\n") == 0 and "no stream named 'extra'" in unknown.stderr
