"""The ZMQ wire format between the publisher and monitors (docs/architecture.md, "The ZMQ message").

A message is three frames: ``[stream name, JSON header, JPEG bytes]``; the JPEG may be empty.
Nothing is pickled. ``decode_message`` is what every subscriber uses: it rejects oversize and
malformed messages with ``MessageError`` rather than trusting what came off the network.
No Ray or Qt imports here, so the GUI can use it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from fervid.errors import FervidError
from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS

MAX_HEADER_BYTES = 256 * 1024
MAX_JPEG_BYTES = 32 * 1024 * 1024
MAX_FACES = 1024
MAX_FRAME_BYTES = max(MAX_HEADER_BYTES, MAX_JPEG_BYTES)
"""The largest single frame a valid message holds: subscribers set it as ZMQ's ``MAXMSGSIZE``
(checked per frame), so a peer sending more is disconnected before the bytes are buffered."""


class MessageError(FervidError):
    """A received message does not follow the wire format."""


@dataclass(frozen=True)
class StreamMessage:
    stream: str
    seq: int
    ts_capture: float
    ts_publish: float
    width: int
    height: int
    fps: float
    faces: Faces = field(default_factory=Faces.empty)
    jpeg: bytes = b""

    def header(self) -> dict:
        return {"stream": self.stream, "seq": self.seq, "ts_capture": self.ts_capture,
                "ts_publish": self.ts_publish, "width": self.width, "height": self.height,
                "fps": self.fps, "faces": self.faces.to_records()}


def encode_message(message: StreamMessage) -> list[bytes]:
    header = json.dumps(message.header(), separators=(",", ":"), allow_nan=False).encode()
    return [message.stream.encode(), header, message.jpeg]


def _number(header: dict, key: str, kind: type) -> float | int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MessageError(f"header field {key!r} must be a number")
    if kind is int:
        if not isinstance(value, int):
            raise MessageError(f"header field {key!r} must be an integer")
        return value
    try:
        number = float(value)  # an integer too large for a float raises OverflowError
    except OverflowError:
        raise MessageError(f"header field {key!r} is out of range") from None
    if not math.isfinite(number):
        raise MessageError(f"header field {key!r} must be finite")
    return number


BOX_LIMIT = 2 ** 31 - 1
"""Box coordinates travel as int32 (``Faces.boxes``); anything larger is not a face in a frame."""

TRACK_LIMIT = 2 ** 53
"""Track ids are below this: the largest integers a JSON reader that parses numbers as doubles
(JavaScript, many others) still reads exactly, so every subscriber sees the same id."""

LABEL_TOLERANCE = 1e-6
"""How far ``confidence`` may be from the smoothed row's maximum: both are rounded to 6 digits."""


@dataclass(frozen=True)
class _Face:
    """One face as read off the wire, checked: its columns for ``Faces``."""

    box: list[int]
    probabilities: list[float]
    track: int | None
    smoothed: list[float] | None


_ROW_NAMES = {"probabilities": "probability", "smoothed": "smoothed probability"}


def _row(raw: dict, key: str) -> list[float]:
    """A ``{class: p}`` object naming exactly the seven classes, each p in [0, 1], in ``EMOTIONS`` order."""
    named = raw.get(key)
    if not isinstance(named, dict) or set(named) != set(EMOTIONS):
        raise MessageError(f"face {key} must name the seven classes")
    row = []
    for name in EMOTIONS:
        p = named[name]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise MessageError(f"{_ROW_NAMES[key]} of {name!r} must be in [0, 1]")
        row.append(float(p))
    return row


def _face(raw: object) -> _Face:
    """One face's box, probabilities and, when tracked, track id and smoothed row, checked.

    ``emotion`` and ``confidence`` are checked too, though ``Faces`` derives them from the rows:
    where a face is smoothed they must be the smoothed row's (what ``Faces.to_records`` writes),
    so a sender that labels with the raw row while sending smoothed ones is caught, not shown.
    """
    if not isinstance(raw, dict):
        raise MessageError("each face must be an object")
    box = raw.get("box")
    if (not isinstance(box, list) or len(box) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)):
        raise MessageError("face box must be four integers")
    if not all(-BOX_LIMIT <= v <= BOX_LIMIT for v in box):
        raise MessageError("face box is out of range")
    probabilities = _row(raw, "probabilities")
    emotion = raw.get("emotion")
    if emotion not in EMOTIONS:
        raise MessageError(f"unknown emotion {emotion!r}")
    confidence = raw.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise MessageError("face confidence must be in [0, 1]")
    track = raw.get("track")
    if "track" in raw and (isinstance(track, bool) or not isinstance(track, int) or not 0 <= track < TRACK_LIMIT):
        raise MessageError("face track must be an integer in [0, 2**53)")
    smoothed = _row(raw, "smoothed") if "smoothed" in raw else None
    if smoothed is not None and not (
            abs(confidence - max(smoothed)) <= LABEL_TOLERANCE
            and abs(smoothed[EMOTIONS.index(emotion)] - confidence) <= LABEL_TOLERANCE):
        raise MessageError("a smoothed face's emotion and confidence must be its smoothed row's top class")
    return _Face(box, probabilities, track, smoothed)


def _frame_bytes(frame: object) -> bytes:
    """The bytes of one frame: ``bytes``, ``bytearray``, ``memoryview`` or ``zmq.Frame``.

    ``bytes(frame)`` is not used because ``bytes(10**10)`` would allocate 10 GB of zeros.
    """
    if isinstance(frame, bytes):
        return frame
    try:
        return memoryview(frame).tobytes()
    except TypeError:
        raise MessageError(f"message frame is {type(frame).__name__}, not bytes") from None


def decode_message(frames: list[bytes]) -> StreamMessage:
    """Parse and validate one received multipart message."""
    if not isinstance(frames, (list, tuple)):
        raise MessageError(f"expected a list of message frames, got {type(frames).__name__}")
    if len(frames) != 3:
        raise MessageError(f"expected 3 message frames, got {len(frames)}")
    topic, header_bytes, jpeg = (_frame_bytes(f) for f in frames)
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise MessageError(f"header of {len(header_bytes)} bytes exceeds {MAX_HEADER_BYTES}")
    if len(jpeg) > MAX_JPEG_BYTES:
        raise MessageError(f"image of {len(jpeg)} bytes exceeds {MAX_JPEG_BYTES}")
    if jpeg and not jpeg.startswith(b"\xff\xd8"):
        raise MessageError("image frame is not a JPEG")
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8/JSON, huge integers, deep nesting
        raise MessageError(f"header is not JSON: {exc.__class__.__name__}") from None
    if not isinstance(header, dict):
        raise MessageError("header must be a JSON object")
    try:
        stream = topic.decode("utf-8")
    except UnicodeDecodeError:
        raise MessageError("topic is not UTF-8") from None
    if header.get("stream") != stream:
        raise MessageError("header stream does not match the topic")
    width, height = _number(header, "width", int), _number(header, "height", int)
    if not (0 < width <= 32768 and 0 < height <= 32768):
        raise MessageError("frame size out of range")
    faces = header.get("faces")
    if not isinstance(faces, list) or len(faces) > MAX_FACES:
        raise MessageError("faces must be a list of at most %d entries" % MAX_FACES)
    return StreamMessage(
        stream=stream, seq=_number(header, "seq", int), ts_capture=_number(header, "ts_capture", float),
        ts_publish=_number(header, "ts_publish", float), width=width, height=height,
        fps=_number(header, "fps", float), faces=_faces(faces), jpeg=jpeg)


def _faces(raw: list) -> Faces:
    """The checked faces as one ``Faces``; ``track`` and ``smoothed`` are each on every face or on none,
    since they are columns of the whole frame (a publisher tracks a stream's faces, or does not)."""
    checked = [_face(face) for face in raw]
    if not checked:
        return Faces.empty()
    for key in ("track", "smoothed"):
        present = sum(getattr(face, key) is not None for face in checked)
        if 0 < present < len(checked):
            raise MessageError(f"{key!r} is on {present} of {len(checked)} faces: it must be on every face or none")
    tracked, smoothed = checked[0].track is not None, checked[0].smoothed is not None
    return Faces(np.array([face.box for face in checked], np.int32),
                 np.array([face.probabilities for face in checked], np.float32),
                 np.array([face.track for face in checked], np.int64) if tracked else None,
                 np.array([face.smoothed for face in checked], np.float32) if smoothed else None)
