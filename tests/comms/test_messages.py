"""The ZMQ wire format: what the publisher encodes, every subscriber decodes; bad input is a MessageError."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from fervid.comms.messages import (
    MAX_HEADER_BYTES, MessageError, StreamMessage, decode_message, encode_message)
from tests.conftest import OBAMA

PROBS = dict(zip(EMOTIONS, (0.05, 0.05, 0.1, 0.6, 0.1, 0.05, 0.05)))


def real_jpeg() -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.imread(str(OBAMA)))
    assert ok
    return encoded.tobytes()


def message(**changes) -> StreamMessage:
    fields = dict(stream="cam1", seq=7, ts_capture=1700000000.25, ts_publish=1700000000.31, width=640,
                  height=360, fps=29.97, faces=Faces.from_records([{"box": [10, 20, 48, 50], "probabilities": PROBS}]), jpeg=b"")
    fields.update(changes)
    return StreamMessage(**fields)


def frames_with(header_changes=None, face_changes=None, topic=b"cam1", jpeg=b"") -> list[bytes]:
    """A valid encoded message whose header (or first face) was then altered."""
    header = json.loads(encode_message(message())[1])
    header["faces"][0].update(face_changes or {})
    header.update(header_changes or {})
    return [topic, json.dumps(header).encode(), jpeg]


def test_round_trip_with_a_real_jpeg():
    """decode(encode(m)) == m, with a real JPEG image frame and the topic as the first frame."""
    original = message(jpeg=real_jpeg())
    frames = encode_message(original)
    assert len(frames) == 3 and frames[0] == b"cam1"
    assert decode_message(frames) == original
    image = cv2.imdecode(np.frombuffer(decode_message(frames).jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == cv2.imread(str(OBAMA)).shape


def test_round_trip_without_faces_or_image():
    """An unwatched stream's message: no JPEG, maybe no faces."""
    original = message(faces=Faces.empty())
    assert decode_message(encode_message(original)) == original


def test_decode_accepts_zmq_frame_like_buffers():
    """pyzmq may hand over memoryviews/bytearrays; they are decoded like bytes."""
    frames = encode_message(message())
    assert decode_message([memoryview(frames[0]), bytearray(frames[1]), frames[2]]) == message()


def test_header_is_plain_json_and_nan_is_refused_on_encode():
    """Nothing is pickled: the header is JSON any language can read; NaN cannot be encoded."""
    header = json.loads(encode_message(message())[1])
    assert header["faces"][0]["probabilities"] == PROBS
    with pytest.raises(ValueError):
        encode_message(message(fps=float("nan")))


@pytest.mark.parametrize("frames", [[], [b"cam1"], [b"cam1", b"{}"], [b"cam1", b"{}", b"", b""]])
def test_wrong_frame_count(frames):
    with pytest.raises(MessageError, match="expected 3 message frames"):
        decode_message(frames)


def test_oversize_header_is_refused_before_parsing():
    header = b'{"pad":"' + b"x" * MAX_HEADER_BYTES + b'"}'
    with pytest.raises(MessageError, match="exceeds"):
        decode_message([b"cam1", header, b""])


@pytest.mark.parametrize("header", [b"not json", b"\xff\xfe", b"", b'{"stream": "cam1"'])
def test_header_that_is_not_json(header):
    with pytest.raises(MessageError, match="not JSON"):
        decode_message([b"cam1", header, b""])


@pytest.mark.parametrize("header", [b"[]", b"3", b'"cam1"', b"null"])
def test_header_that_is_not_an_object(header):
    with pytest.raises(MessageError, match="JSON object"):
        decode_message([b"cam1", header, b""])


def test_topic_and_header_stream_must_match():
    """A message on topic 'cam2' claiming to be 'cam1' is refused."""
    with pytest.raises(MessageError, match="does not match the topic"):
        decode_message(frames_with(topic=b"cam2"))


def test_image_frame_must_be_a_jpeg():
    png = cv2.imencode(".png", cv2.imread(str(OBAMA)))[1].tobytes()
    with pytest.raises(MessageError, match="not a JPEG"):
        decode_message(frames_with(jpeg=png))


@pytest.mark.parametrize("probabilities, match", [
    ({**PROBS, "happy": 1.5}, r"probability of 'happy'"),
    ({**PROBS, "sad": -0.1}, r"probability of 'sad'"),
    ({**PROBS, "fear": "0.1"}, r"probability of 'fear'"),
    ({**PROBS, "fear": True}, r"probability of 'fear'"),
    ({k: v for k, v in PROBS.items() if k != "neutral"}, "seven classes"),
    ({**PROBS, "contempt": 0.0}, "seven classes"),
    ([0.1] * 7, "seven classes"),
])
def test_bad_probabilities(probabilities, match):
    with pytest.raises(MessageError, match=match):
        decode_message(frames_with(face_changes={"probabilities": probabilities}))


@pytest.mark.parametrize("emotion", ["contempt", "Happy", None, 3])
def test_unknown_emotion(emotion):
    with pytest.raises(MessageError, match="unknown emotion"):
        decode_message(frames_with(face_changes={"emotion": emotion}))


@pytest.mark.parametrize("field", ["ts_capture", "ts_publish", "fps"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(field, value):
    """Python's json reads NaN/Infinity; the decoder must not let them through."""
    with pytest.raises(MessageError, match="finite"):
        decode_message(frames_with({field: value}))


@pytest.mark.parametrize("face_changes", [{"confidence": float("nan")}, {"confidence": 2},
                                          {"probabilities": {**PROBS, "angry": float("nan")}}])
def test_nan_inside_a_face_is_refused(face_changes):
    with pytest.raises(MessageError):
        decode_message(frames_with(face_changes=face_changes))


@pytest.mark.parametrize("header_changes, match", [
    ({"seq": 7.5}, "integer"), ({"seq": True}, "number"), ({"width": "640"}, "number"),
    ({"width": 0}, "frame size"), ({"height": 40000}, "frame size"), ({"faces": {}}, "faces must be a list"),
    ({"faces": [None]}, "each face"), ({"stream": None}, "does not match"),
])
def test_bad_header_fields(header_changes, match):
    with pytest.raises(MessageError, match=match):
        decode_message(frames_with(header_changes))


@pytest.mark.parametrize("box", [[1, 2, 3], [1, 2, 3, 4.5], [1, 2, 3, True], "1,2,3,4"])
def test_bad_face_boxes(box):
    with pytest.raises(MessageError, match="box"):
        decode_message(frames_with(face_changes={"box": box}))


def test_deeply_nested_header_is_a_message_error():
    """A hostile 200 kB header of nested brackets (under the size limit) must be refused as a
    MessageError, not crash the subscriber with RecursionError."""
    header = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MessageError):
        decode_message([b"cam1", header, b""])


def test_huge_integer_in_header_is_a_message_error():
    """Python refuses to parse integers of more than 4300 digits with a plain ValueError; the
    decoder must turn that into MessageError like any other malformed header."""
    header = b'{"stream":"cam1","seq":' + b"9" * 5000 + b"}"
    with pytest.raises(MessageError):
        decode_message([b"cam1", header, b""])


_frame = st.binary(max_size=64) | st.sampled_from([b"cam1", b"\xff\xd8\xff", b"{}", b"[]", b"null"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_frame, max_size=5))
def test_fuzz_random_frames_only_raise_message_error(frames):
    """Whatever comes off the network, decode_message returns a message or raises MessageError."""
    try:
        decoded = decode_message(frames)
    except MessageError:
        return
    assert isinstance(decoded, StreamMessage)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(header_changes=st.dictionaries(st.sampled_from(list(message().header()) + ["x"]), _json, max_size=3),
       face_changes=st.dictionaries(st.sampled_from(["box", "emotion", "confidence", "probabilities"]), _json,
                                    max_size=2))
def test_fuzz_altered_headers_only_raise_message_error(header_changes, face_changes):
    """Valid messages with random fields replaced: decoded or MessageError, never anything else."""
    frames = frames_with(face_changes=face_changes)
    header = json.loads(frames[1])
    header.update(header_changes)
    try:
        decode_message([frames[0], json.dumps(header).encode(), b""])
    except MessageError:
        pass
