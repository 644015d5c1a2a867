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
SMOOTHED = dict(zip(EMOTIONS, (0.05, 0.05, 0.1, 0.3, 0.4, 0.05, 0.05)))
"""A track's averaged row whose top class (sad) differs from the raw row's (happy)."""


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


def tracked_faces() -> Faces:
    """Two faces of a tracked, smoothed stream, as ``StreamTracking`` hands them to the publisher."""
    return Faces.from_records([
        {"box": [10, 20, 48, 50], "probabilities": PROBS, "track": 3, "smoothed": SMOOTHED},
        {"box": [200, 40, 60, 64], "probabilities": SMOOTHED, "track": 0, "smoothed": PROBS}])


def tracked_frames_with(*face_changes: dict, drop: tuple[tuple[int, str], ...] = ()) -> list[bytes]:
    """A valid encoded tracked message whose faces were then altered (one dict per face) and had
    the ``(face index, key)`` pairs in ``drop`` removed."""
    header = json.loads(encode_message(message(faces=tracked_faces()))[1])
    for record, changes in zip(header["faces"], face_changes):
        record.update(changes)
    for index, key in drop:
        del header["faces"][index][key]
    return [b"cam1", json.dumps(header).encode(), b""]


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


def test_round_trip_of_tracked_smoothed_faces():
    """Track ids and smoothed rows travel; the label on the wire and after decoding is the smoothed one."""
    original = message(faces=tracked_faces(), jpeg=real_jpeg())
    frames = encode_message(original)
    records = json.loads(frames[1])["faces"]
    assert [(r["track"], r["emotion"], r["confidence"]) for r in records] == [(3, "sad", 0.4), (0, "happy", 0.6)]
    assert records[0]["smoothed"] == SMOOTHED and records[0]["probabilities"] == PROBS
    decoded = decode_message(frames)
    assert decoded == original
    assert decoded.faces.track_ids.tolist() == [3, 0] and decoded.faces.track_ids.dtype == np.int64
    np.testing.assert_allclose(decoded.faces.smoothed[0], [SMOOTHED[name] for name in EMOTIONS], atol=1e-7)
    np.testing.assert_allclose(decoded.faces.probabilities[0], [PROBS[name] for name in EMOTIONS], atol=1e-7)
    assert decoded.faces.emotions == ["sad", "happy"]


@pytest.mark.parametrize("columns", ["track", "smoothed"])
def test_track_ids_and_smoothed_rows_travel_one_without_the_other(columns):
    tracked = tracked_faces()
    faces = (Faces(tracked.boxes, tracked.probabilities, track_ids=tracked.track_ids) if columns == "track"
             else Faces(tracked.boxes, tracked.probabilities, smoothed=tracked.smoothed))
    decoded = decode_message(encode_message(message(faces=faces))).faces
    assert decoded == faces
    assert (decoded.track_ids is None, decoded.smoothed is None) == (columns != "track", columns == "track")


def test_a_message_from_an_older_publisher_without_tracks_still_decodes():
    """Publishers from before tracking send neither field: the faces come back untracked."""
    header = json.loads(encode_message(message())[1])
    assert set(header["faces"][0]) == {"box", "emotion", "confidence", "probabilities"}
    faces = decode_message(encode_message(message())).faces
    assert faces.track_ids is None and faces.smoothed is None and faces.emotions == ["happy"]


@pytest.mark.parametrize("track", [0, 2 ** 53 - 1])
def test_track_ids_at_the_ends_of_their_range(track):
    assert decode_message(tracked_frames_with({"track": track})).faces.track_ids[0] == track


@pytest.mark.parametrize("track", [-1, 2 ** 53, pytest.param(10 ** 400, id="10**400"), True, False, 1.0, 3.5,
                                   "3", None, [3], {"id": 3}, float("nan")])
def test_bad_track_ids(track):
    with pytest.raises(MessageError, match=r"face track must be an integer in \[0, 2\*\*53\)"):
        decode_message(tracked_frames_with({"track": track}))


@pytest.mark.parametrize("smoothed, match", [
    ({**SMOOTHED, "sad": 1.5}, r"smoothed probability of 'sad'"),
    ({**SMOOTHED, "angry": -0.1}, r"smoothed probability of 'angry'"),
    ({**SMOOTHED, "fear": "0.1"}, r"smoothed probability of 'fear'"),
    ({**SMOOTHED, "fear": True}, r"smoothed probability of 'fear'"),
    ({**SMOOTHED, "fear": float("nan")}, r"smoothed probability of 'fear'"),
    ({k: v for k, v in SMOOTHED.items() if k != "neutral"}, "face smoothed must name the seven classes"),
    ({**SMOOTHED, "contempt": 0.0}, "face smoothed must name the seven classes"),
    ([0.1] * 7, "face smoothed must name the seven classes"),
    (None, "face smoothed must name the seven classes"),
])
def test_bad_smoothed_rows(smoothed, match):
    with pytest.raises(MessageError, match=match):
        decode_message(tracked_frames_with({"smoothed": smoothed}))


@pytest.mark.parametrize("face_changes", [
    {"emotion": "happy", "confidence": 0.6},  # the raw row's label on a smoothed face
    {"emotion": "sad", "confidence": 0.6},
    {"emotion": "happy", "confidence": 0.4},  # the right confidence, another class
    {"confidence": 0.4 + 2e-6},
])
def test_a_smoothed_face_is_labelled_with_its_smoothed_row(face_changes):
    with pytest.raises(MessageError, match="emotion and confidence must be its smoothed row's top class"):
        decode_message(tracked_frames_with(face_changes))


def test_a_smoothed_tie_accepts_either_top_class():
    tie = {**SMOOTHED, "happy": 0.4}
    for emotion in ("happy", "sad"):
        decoded = decode_message(tracked_frames_with({"smoothed": tie, "emotion": emotion}))
        assert decoded.faces.smoothed[0].max() == pytest.approx(0.4)


@pytest.mark.parametrize("key", ["track", "smoothed"])
@pytest.mark.parametrize("missing_on", [0, 1])
def test_track_and_smoothed_are_on_every_face_or_none(key, missing_on):
    with pytest.raises(MessageError, match=rf"^'{key}' is on 1 of 2 faces: it must be on every face or none$"):
        decode_message(tracked_frames_with(drop=((missing_on, key),)))


def test_tracked_fields_dropped_from_every_face_leave_untracked_faces():
    frames = tracked_frames_with(drop=((0, "track"), (1, "track")))
    faces = decode_message(frames).faces
    assert faces.track_ids is None and faces.smoothed is not None and faces.emotions == ["sad", "happy"]


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
       face_changes=st.dictionaries(st.sampled_from(["box", "emotion", "confidence", "probabilities", "track",
                                                     "smoothed"]), _json, max_size=2))
def test_fuzz_altered_headers_only_raise_message_error(header_changes, face_changes):
    """Valid messages with random fields replaced: decoded or MessageError, never anything else."""
    frames = frames_with(face_changes=face_changes)
    header = json.loads(frames[1])
    header.update(header_changes)
    try:
        decode_message([frames[0], json.dumps(header).encode(), b""])
    except MessageError:
        pass


_rows = st.lists(st.floats(0, 1, width=32), min_size=len(EMOTIONS), max_size=len(EMOTIONS))


@st.composite
def _stream_faces(draw, tracked_and_smoothed: bool = False) -> Faces:
    """Faces as a publisher may send them: untracked, tracked, smoothed, or both (with
    ``tracked_and_smoothed``: at least one face, with both)."""
    n = draw(st.integers(1 if tracked_and_smoothed else 0, 5))
    boxes = draw(st.lists(st.lists(st.integers(-2 ** 31 + 1, 2 ** 31 - 1), min_size=4, max_size=4),
                          min_size=n, max_size=n))
    probabilities = draw(st.lists(_rows, min_size=n, max_size=n))
    maybe = st.nothing() if tracked_and_smoothed else st.none()
    tracks = draw(maybe | st.lists(st.integers(0, 2 ** 53 - 1), min_size=n, max_size=n))
    smoothed = draw(maybe | st.lists(_rows, min_size=n, max_size=n))
    if n == 0:
        return Faces.empty()
    return Faces(np.array(boxes, np.int32), np.array(probabilities, np.float32),
                 None if tracks is None else np.array(tracks, np.int64),
                 None if smoothed is None else np.array(smoothed, np.float32))


@settings(max_examples=300, deadline=None)
@given(faces=_stream_faces())
def test_fuzz_round_trip_of_tracked_and_untracked_faces(faces):
    """Whatever faces a publisher holds, decode(encode(m)) == m, track ids and smoothed rows included."""
    original = message(faces=faces)
    decoded = decode_message(encode_message(original))
    assert decoded == original
    assert (decoded.faces.track_ids is None) == (faces.track_ids is None or not len(faces))
    assert (decoded.faces.smoothed is None) == (faces.smoothed is None or not len(faces))
    np.testing.assert_allclose(decoded.faces.confidences, faces.confidences, atol=1e-6)
    for row, emotion in zip(faces.shown, decoded.faces.emotions):  # a near tie may break either way
        assert row[EMOTIONS.index(emotion)] == pytest.approx(row.max(), abs=1e-6)


_bad_tracks = (st.integers(max_value=-1) | st.integers(min_value=2 ** 53) | st.booleans() | st.none()
               | st.floats() | st.text(max_size=4) | st.lists(st.integers(0, 9), max_size=2))
_bad_smoothed = (st.fixed_dictionaries({name: st.floats(0, 1) for name in EMOTIONS}).flatmap(
    lambda row: st.sampled_from(EMOTIONS).flatmap(lambda name: st.builds(
        lambda bad: {**row, name: bad},
        st.floats(min_value=1.0, exclude_min=True) | st.floats(max_value=0.0, exclude_max=True)
        | st.just(float("nan")) | st.booleans() | st.text(max_size=3) | st.none()))) | _json)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), faces=_stream_faces(tracked_and_smoothed=True))
def test_fuzz_malformed_track_or_smoothed_is_a_message_error(data, faces):
    """A bad track id or smoothed row on any face, or the field missing from some faces only,
    is a MessageError with a one-line reason: never accepted, never another exception."""
    header = json.loads(encode_message(message(faces=faces))[1])
    index = data.draw(st.integers(0, len(faces) - 1))
    key = data.draw(st.sampled_from(["track", "smoothed"]))
    fault = data.draw(st.sampled_from(["bad value", "missing"] if len(faces) > 1 else ["bad value"]))
    if fault == "missing":
        del header["faces"][index][key]
    else:
        header["faces"][index][key] = data.draw(_bad_tracks if key == "track" else _bad_smoothed)
    with pytest.raises(MessageError) as caught:
        decode_message([b"cam1", json.dumps(header).encode(), b""])
    assert str(caught.value) and "\n" not in str(caught.value)
