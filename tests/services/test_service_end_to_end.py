"""The real service on a real Ray: three streams of the sample clip, ZMQ out, /metrics scraped.

One service runs for the whole module (starting actors costs seconds on this box); each test
checks one promise against it, including surviving SIGKILLed actors and a vanishing source.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time

import cv2
import numpy as np
import pytest

from models.labels import EMOTIONS
from tests.conftest import SAMPLE_CLIP, run_fervid
from tests.services.service_helpers import Subscriber, free_port, sample_value, scrape, wait_for

STREAMS = ("cam0", "cam1", "cam2")


@pytest.fixture(scope="module")
def service(ray_session):
    from services.config import parse_config
    from services.service import start_service, stop_service

    ports = {"zmq": free_port(), "metrics": free_port()}
    config = parse_config({
        "streams": [{"name": name, "source": str(SAMPLE_CLIP), "loop": True} for name in STREAMS],
        "publisher": {"endpoint": f"tcp://127.0.0.1:{ports['zmq']}"},
        "metrics": {"port": ports["metrics"]},
        "inference": {"max_wait_ms": 40},
        "capture": {"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "stuck_timeout_s": 4.0},
    })
    controller = start_service(config)
    info = {"controller": controller, "endpoint": config.publisher.endpoint, "metrics_port": ports["metrics"],
            "address": ray_session.get_runtime_context().gcs_address}
    wait_for(lambda: all(s.get("frames_processed", 0) > 5 for s in status(info)["streams"]), 120,
             what="every stream to process frames")
    yield info
    stop_service(controller)


def status(service) -> dict:
    import ray

    return ray.get(service["controller"].status.remote(), timeout=30)


def stream_status(service, name: str) -> dict:
    return next(s for s in status(service)["streams"] if s["name"] == name)


def processed(service) -> dict[str, int]:
    return {s["name"]: s.get("frames_processed", 0) for s in status(service)["streams"]}


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
        for message in received:
            assert message.jpeg, "a watched stream must carry its JPEG frame"
            image = cv2.imdecode(np.frombuffer(message.jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[:2] == (message.height, message.width)
            assert message.ts_capture <= message.ts_publish
            for face in message.faces:
                x, y, w, h = face.box
                assert 0 <= x and 0 <= y and w > 0 and h > 0
                assert x + w <= message.width and y + h <= message.height
                assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
                assert face.emotion == max(face.probabilities, key=face.probabilities.get)
                assert face.emotion in EMOTIONS
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
    subscriber = Subscriber(service["endpoint"], topics=("cam0",))
    try:
        time.sleep(1.5)  # the subscription reaches the publisher; older encodes are flushed
        before = scrape(service["metrics_port"])
        messages = subscriber.collect(4.0)
        after = scrape(service["metrics_port"])
    finally:
        subscriber.close()
    assert messages and all(m.stream == "cam0" and m.jpeg for m in messages)

    def grew(name: str, stream: str) -> float:
        return sample_value(after, name, stream=stream) - sample_value(before, name, stream=stream)

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


def _pid_of(actor_name: str) -> int | None:
    """The actor's process id, or None while Ray is restarting it."""
    import ray

    from services.runtime import NAMESPACE

    try:
        return ray.get(ray.get_actor(actor_name, namespace=NAMESPACE).pid.remote(), timeout=30)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return None


def test_sigkilled_detector_is_restarted_and_streams_resume(service):
    before = processed(service)
    pid = _pid_of("detector:0")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _pid_of("detector:0") not in (None, pid), 60, what="the detector to come back")
    mark = processed(service)
    try:
        wait_for(lambda: all(processed(service)[n] > mark[n] + 5 for n in STREAMS), 60,
                 what="every stream to keep flowing after the detector was killed")
    except AssertionError as exc:  # say where each stream stands: this has been seen once in CI
        raise AssertionError(f"{exc}; processed at the mark {mark}; now {status(service)['streams']}") from None
    assert all(processed(service)[n] > before[n] for n in STREAMS)
    samples = wait_for(lambda: (s := scrape(service["metrics_port"])) and
                       sample_value(s, "fervid_actor_restarts_total", kind="detector") >= 1 and s, 10,
                       what="the restart to be counted")
    assert sample_value(samples, "fervid_actor_restarts_total", kind="detector") >= 1


def test_sigkilled_capture_is_restarted_and_numbering_continues(service):
    subscriber = Subscriber(service["endpoint"], topics=("cam1",))
    try:
        before = [m.seq for m in subscriber.collect(2.0) if m.stream == "cam1"]
        old = stream_status(service, "cam1")
        os.kill(old["pid"], signal.SIGKILL)
        wait_for(lambda: (s := stream_status(service, "cam1")).get("pid") not in (None, old["pid"])
                 and s.get("frames_processed", 0) > 5, 60, what="cam1 to resume in a new process")
        after = [m.seq for m in subscriber.collect(3.0) if m.stream == "cam1"]
    finally:
        subscriber.close()
    assert before and after
    assert min(after) > max(before), "sequence numbers went backwards after the restart"
    assert stream_status(service, "cam1")["restarted"] is True
    wait_for(lambda: sample_value(scrape(service["metrics_port"]), "fervid_actor_restarts_total",
                                  kind="capture") >= 1, 10, what="the capture restart to be counted")


def test_frozen_detector_does_not_stop_the_streams(service):
    """SIGSTOP a detector: its frames never finish, so the watchdog gives them up (counted), and
    every stream keeps moving on the other detector; after SIGCONT all is as before."""
    pid = _pid_of("detector:1")
    before = {n: stream_status(service, n) for n in STREAMS}
    os.kill(pid, signal.SIGSTOP)
    try:
        mark = processed(service)
        wait_for(lambda: all(stream_status(service, n).get("stuck_given_up", 0) > before[n].get("stuck_given_up", 0)
                             for n in STREAMS), 60, what="frames stuck on the frozen detector to be given up")
        wait_for(lambda: all(processed(service)[n] > mark[n] + 5 for n in STREAMS), 60,
                 what="every stream to keep flowing while a detector is frozen")
        samples = scrape(service["metrics_port"])
        assert sum(sample_value(samples, "fervid_frames_dropped_total", stream=n, stage="detect") for n in STREAMS) >= 3
    finally:
        os.kill(pid, signal.SIGCONT)
    assert _pid_of("detector:1") == pid  # frozen, not dead: nobody restarted it


def _restarts_counted(port: int, kind: str) -> bool:
    """Whether /metrics counts a restart of ``kind`` (False while the endpoint itself restarts)."""
    try:
        return sample_value(scrape(port), "fervid_actor_restarts_total", kind=kind) >= 1
    except OSError:
        return False


@pytest.mark.parametrize(("name", "kind"), [("inference:0", "inference"), ("publisher", "publisher"),
                                            ("metrics", "metrics")])
def test_sigkilled_pipeline_actor_is_restarted_and_streams_resume(service, name, kind):
    """Ray restarts the actor in place; captures keep their handles, so every stream flows again."""
    pid = _pid_of(name)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _pid_of(name) not in (None, pid), 90, what=f"{name} to come back in a new process")
    mark = processed(service)
    wait_for(lambda: all(processed(service)[n] > mark[n] + 5 for n in STREAMS), 90,
             what=f"every stream to flow again after {name} was killed")
    wait_for(lambda: _restarts_counted(service["metrics_port"], kind), 30, what=f"the {kind} restart to be counted")
    if kind == "publisher":  # subscribers reconnect by themselves and get in-order messages again
        subscriber = Subscriber(service["endpoint"], topics=("cam0",))
        try:
            seqs = [m.seq for m in subscriber.collect(3.0) if m.stream == "cam0"]
        finally:
            subscriber.close()
        assert seqs and seqs == sorted(set(seqs))


def test_file_source_that_vanishes_and_returns_is_reopened(service, tmp_path):
    import ray

    clip = tmp_path / "clip.mp4"
    shutil.copy(SAMPLE_CLIP, clip)
    ray.get(service["controller"].attach.remote(
        {"name": "flaky", "source": str(clip), "loop": True, "fps": 150}), timeout=120)
    try:
        wait_for(lambda: stream_status(service, "flaky").get("state") == "up", 60, what="flaky to come up")
        hidden = tmp_path / "hidden.mp4"
        clip.rename(hidden)
        down = wait_for(lambda: (s := stream_status(service, "flaky")).get("state") == "down" and s, 30,
                        what="flaky to be reported down once the file is gone")
        assert "cannot open" in down["last_error"]
        mark = scrape(service["metrics_port"])
        wait_for(lambda: all(sample_value(scrape(service["metrics_port"]), "fervid_frames_processed_total",
                                          stream=n) > sample_value(mark, "fervid_frames_processed_total", stream=n) + 5
                             for n in STREAMS), 30, what="the other streams to keep flowing")
        assert stream_status(service, "flaky")["state"] == "down"
        hidden.rename(clip)
        back = wait_for(lambda: (s := stream_status(service, "flaky")).get("state") == "up" and s, 30,
                        what="flaky to come back")
        assert back["reconnects"] >= 1
        wait_for(lambda: sample_value(scrape(service["metrics_port"]), "fervid_reconnects_total",
                                      stream="flaky") >= 1, 10, what="the reconnect metric")
    finally:
        ray.get(service["controller"].detach.remote("flaky"), timeout=60)


def test_http_camera_that_stops_and_restarts_is_reopened(service):
    """A real MJPEG camera on loopback is stopped and restarted on the same port."""
    import ray

    from tests.helpers.mjpeg_server import MjpegServer

    camera = MjpegServer.from_video(SAMPLE_CLIP, fps=15).start()
    ray.get(service["controller"].attach.remote({"name": "webcam", "source": camera.url}), timeout=120)
    try:
        wait_for(lambda: stream_status(service, "webcam").get("frames_processed", 0) > 5, 60,
                 what="the HTTP camera to flow")
        camera.stop()
        down = wait_for(lambda: (s := stream_status(service, "webcam")).get("state") == "down" and s, 60,
                        what="the stopped camera to be reported down")
        assert down["last_error"]
        camera.start()
        back = wait_for(lambda: (s := stream_status(service, "webcam")).get("state") == "up" and s, 60,
                        what="the restarted camera to come back")
        assert back["reconnects"] >= 1
        mark = back.get("frames_processed", 0)
        wait_for(lambda: stream_status(service, "webcam").get("frames_processed", 0) > mark + 5, 60,
                 what="frames from the restarted camera")
    finally:
        ray.get(service["controller"].detach.remote("webcam"), timeout=60)
        camera.stop()


def test_sigkilled_controller_recovers_and_keeps_the_streams(service):
    """Ray restarts the controller; it adopts the running actors and the attached streams."""
    import ray

    controller = service["controller"]
    pid = ray.get(controller.pid.remote(), timeout=30)
    before = processed(service)
    os.kill(pid, signal.SIGKILL)

    def recovered():
        try:
            document = ray.get(controller.status.remote(), timeout=5)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return None
        counts = {s["name"]: s.get("frames_processed", 0) for s in document["streams"]}
        return document["started"] and set(counts) == set(STREAMS) and all(
            counts[n] > before[n] for n in STREAMS) and counts

    wait_for(recovered, 90, what="the restarted controller to report the same streams, still flowing")
    assert ray.get(controller.pid.remote(), timeout=30) != pid
    wait_for(lambda: sample_value(scrape(service["metrics_port"]), "fervid_actor_restarts_total",
                                  kind="controller") >= 1, 10, what="the controller restart to be counted")
