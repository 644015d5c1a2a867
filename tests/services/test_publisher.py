"""The message the publisher builds for a frame, and the publisher actor on a real Ray: it sends
what it receives (classified faces, JPEG bytes from the capture actor), never out of order, and
tells the capture whether anybody watches the stream."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from fervid.comms.messages import decode_message, encode_message
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from fervid.services.publisher import build_message
from tests.conftest import OBAMA


def meta(**changes) -> dict:
    return {"stream": "cam1", "seq": 12, "ts_capture": time.time() - 0.05, "width": 640, "height": 360,
            "fps": 29.97, **changes}


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def test_build_message_decodes_like_any_received_message():
    """What the publisher sends passes the subscribers' strict decoder: boxes as ints, the
    argmax emotion and its confidence, probabilities summing to 1, the JPEG untouched."""
    rng = np.random.default_rng(0)
    boxes = np.array([[10, 20, 48, 50], [300, 40, 96, 96]], dtype=np.int32)
    probabilities = softmax(rng.normal(size=(2, len(EMOTIONS))).astype(np.float32) * 3)
    jpeg = cv2.imencode(".jpg", cv2.imread(str(OBAMA)))[1].tobytes()
    info = meta()
    before = time.time()
    message = build_message(info, Faces(boxes, probabilities), jpeg)
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert (decoded.stream, decoded.seq, decoded.width, decoded.height) == ("cam1", 12, 640, 360)
    assert decoded.ts_capture == info["ts_capture"] <= before <= decoded.ts_publish <= time.time()
    assert decoded.jpeg == jpeg
    assert decoded.faces.boxes.tolist() == [[10, 20, 48, 50], [300, 40, 96, 96]]
    for record, row in zip(decoded.faces.to_records(), probabilities):
        assert list(record["probabilities"]) == list(EMOTIONS)
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert record["emotion"] == EMOTIONS[int(np.argmax(row))]
        assert record["confidence"] == pytest.approx(float(row.max()), abs=1e-5)


def test_build_message_for_an_unwatched_frame_without_faces():
    """No faces and no JPEG (unwatched stream) is still a valid message."""
    message = build_message(meta(seq=1), Faces.empty(), b"")
    decoded = decode_message(encode_message(message))
    assert len(decoded.faces) == 0 and decoded.jpeg == b"" and decoded.seq == 1


def test_publisher_actor_sends_what_it_is_given_and_says_who_watches(ray_session):
    """The real actor on Ray with a real SUB socket: ``publish`` takes the classified faces and the
    capture's JPEG (no frame reference: it never reads a frame), reports ``watched`` once a monitor
    subscribes, sends the bytes untouched, and refuses a frame older than one already sent."""
    from fervid.services.inference import Classification
    from fervid.services.publisher import PublisherActor
    from tests.helpers.zmq_helpers import frame_bgr, frame_jpeg
    from tests.services.service_helpers import Subscriber, free_port, wait_for

    ray = ray_session
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    actor = PublisherActor.remote(endpoint, 65)
    height, width = frame_bgr().shape[:2]
    faces = Faces(np.array([[10, 20, 60, 60]], np.int32), np.full((1, 7), 1 / 7, np.float32))
    classification = Classification(faces, detect_seconds=0.02, infer_seconds=0.01)
    seq = iter(range(1, 10_000))

    def publish(jpeg: bytes = b""):
        info = meta(seq=next(seq), width=width, height=height, ts_capture=time.time())
        return ray.get(actor.publish.remote(info, classification, jpeg), timeout=30)

    subscriber = None
    try:
        assert ray.get(actor.check.remote(), timeout=60) is None
        assert ray.get(actor.jpeg_quality.remote(), timeout=30) == 65
        first = publish()
        assert first.sent and not first.watched and first.seconds >= 0
        assert not ray.get(actor.is_watched.remote("cam1"), timeout=30)
        subscriber = Subscriber(endpoint, ("cam1",))
        # Asked directly (what a capture actor does at start), the publisher sees the subscription too.
        wait_for(lambda: ray.get(actor.is_watched.remote("cam1"), timeout=30), 15, interval=0.05,
                 what="the publisher to report the subscription when asked")
        assert not ray.get(actor.is_watched.remote("cam2"), timeout=30)
        wait_for(lambda: publish().watched, 15, interval=0.05, what="the publisher to see the subscription")
        received = []
        wait_for(lambda: publish(frame_jpeg()) and received.extend(subscriber.collect(0.2)) or any(
            m.jpeg for m in received), 15, interval=0.05, what="a message with its JPEG")
        message = next(m for m in received if m.jpeg)
        assert message.jpeg == frame_jpeg() and message.faces == faces
        assert (message.width, message.height) == (width, height)
        late = ray.get(actor.publish.remote(meta(seq=1), classification, b""), timeout=30)
        assert not late.sent and late.watched
        assert ray.get(actor.last_seq.remote("cam1"), timeout=30) >= message.seq
    finally:
        if subscriber is not None:
            subscriber.close()
        ray.get(actor.close.remote(), timeout=30)
        ray.kill(actor)
