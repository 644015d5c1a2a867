"""Fuzzing what comes from outside: ZMQ messages off the network and config files from users.

``decode_message`` must turn anything into a ``StreamMessage`` or a ``MessageError``, never another
exception (a monitor would crash); ``load_config`` must turn any file into a ``ServiceConfig`` or a
one-line ``ConfigError`` (``fervid up`` prints it and exits 2). Each test runs in a few seconds.
"""
from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fervid.models.labels import EMOTIONS
from fervid.services.config import ConfigError, ServiceConfig, load_config
from fervid.comms.messages import MessageError, StreamMessage, decode_message, encode_message
from tests.conftest import SAMPLE_CLIP

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- decode_message ------------------------------------------------------------------------------

_json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
                 | st.floats(allow_nan=False) | st.text(max_size=8)
                 | st.sampled_from(["cam1", *EMOTIONS, 0.5, 0, 1, -1, 2**63, 1e308]))
_json_values = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _face() -> st.SearchStrategy:
    """Faces that are valid, nearly valid, or junk."""
    probabilities = st.fixed_dictionaries({name: st.floats(0, 1) | _json_scalars for name in EMOTIONS}) | _json_values
    return st.fixed_dictionaries({}, optional={
        "box": st.lists(st.integers() | _json_scalars, min_size=3, max_size=5) | _json_values,
        "emotion": st.sampled_from(EMOTIONS) | _json_values,
        "confidence": st.floats(0, 1) | _json_values,
        "probabilities": probabilities,
    }) | _json_values


_headers = st.fixed_dictionaries({}, optional={
    "stream": st.sampled_from(["cam1", "cam2", ""]) | _json_values,
    "seq": st.integers() | _json_values,
    "ts_capture": st.floats() | st.integers(min_value=10**300, max_value=10**400) | _json_values,
    "ts_publish": st.floats() | _json_values,
    "width": st.integers(-5, 70000) | _json_values,
    "height": st.integers(-5, 70000) | _json_values,
    "fps": st.floats() | _json_values,
    "faces": st.lists(_face(), max_size=3) | _json_values,
}) | _json_values


_valid_faces = st.lists(st.builds(
    lambda box, probs, emotion: {"box": box, "emotion": emotion, "confidence": max(probs),
                                 "probabilities": dict(zip(EMOTIONS, probs))},
    st.lists(st.integers(0, 4000), min_size=4, max_size=4),
    st.lists(st.floats(0, 1), min_size=7, max_size=7), st.sampled_from(EMOTIONS)), max_size=3)
_valid_headers = st.fixed_dictionaries({
    "stream": st.just("cam1"), "seq": st.integers(0, 2**40), "ts_capture": st.floats(0, 2e9),
    "ts_publish": st.floats(0, 2e9), "width": st.integers(1, 32768), "height": st.integers(1, 32768),
    "fps": st.floats(0, 1000), "faces": _valid_faces})
_nearly_valid_headers = st.builds(lambda header, key, value: {**header, key: value}, _valid_headers,
                                  st.sampled_from(["stream", "seq", "ts_capture", "width", "fps", "faces", "x"]),
                                  _json_values)


def _header_bytes(header) -> bytes:
    return json.dumps(header).encode()  # NaN and Infinity included: JSON from a careless sender


_frame = (st.binary(max_size=64)
          | _headers.map(_header_bytes)
          | st.binary(max_size=32).map(lambda b: b"\xff\xd8" + b)
          | st.sampled_from([b"\xff\xfe", b"{" * 5000, b"[" * 200_000, b'{"a": 1e999}', b"1" * 5000,
                             "é".encode("latin-1"), b"\x00"])
          | st.builds(bytearray, st.binary(max_size=16))
          | st.builds(memoryview, st.binary(max_size=16)))
_not_a_frame = st.none() | st.integers() | st.text(max_size=4) | st.floats() | st.just(10**12)
_jpegs = st.sampled_from([b"", b"\xff\xd8\xff\xe0jpeg", b"GIF89a"])
_valid_messages = st.tuples(st.just(b"cam1"), _valid_headers.map(_header_bytes), _jpegs).map(list)
_messages = (_valid_messages
             | st.tuples(st.just(b"cam1"), _nearly_valid_headers.map(_header_bytes), _jpegs).map(list)
             | st.tuples(st.sampled_from([b"cam1", b"cam2", b"", b"\xff"]), _headers.map(_header_bytes),
                         _jpegs).map(list))
_frame_lists = (_messages | st.lists(_frame, max_size=5)
                | st.lists(_frame | _not_a_frame, min_size=3, max_size=3)
                | _not_a_frame | st.lists(_frame, max_size=3).map(tuple))


@FUZZ
@given(frames=_frame_lists)
@example(frames=[b"cam1", b'{"stream": "cam1", "seq": 1, "ts_capture": 1' + b"0" * 400 + b', "ts_publish": 1,'
                 b' "width": 1, "height": 1, "fps": 1, "faces": []}', b""])
@example(frames=[b"cam1", b"{}", 10**12])
@example(frames=None)
def test_decode_message_raises_only_message_error(frames):
    """Anything decodes to a valid message, which re-encodes to itself, or raises MessageError."""
    try:
        message = decode_message(frames)
    except MessageError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(message, StreamMessage)
    assert all(math.isfinite(v) for v in (message.ts_capture, message.ts_publish, message.fps))
    assert 0 < message.width <= 32768 and 0 < message.height <= 32768
    assert decode_message(encode_message(message)) == message


def test_the_message_fuzzer_reaches_valid_messages():
    """The strategies above are not all junk: they produce messages that decode (else the
    property above would only ever test the rejecting paths)."""
    decoded = []

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(frames=_messages)
    def collect(frames):
        try:
            decoded.append(decode_message(frames))
        except MessageError:
            pass

    collect()
    assert len(decoded) > 50, f"only {len(decoded)} generated messages were valid"
    assert any(message.faces for message in decoded) and any(message.jpeg for message in decoded)


# -- the config loader ---------------------------------------------------------------------------

_sections = {
    "streams": None, "capture": ["max_in_flight", "reconnect_initial_s", "reconnect_max_s", "open_timeout_s",
                                 "read_timeout_s", "num_cpus", "stuck_timeout_s"],
    "detector": ["pool_size", "num_cpus", "scale_factor", "min_neighbors", "min_size", "downscale"],
    "inference": ["model", "max_batch", "max_wait_ms", "flip_average", "actors", "num_gpus", "num_cpus"],
    "publisher": ["endpoint", "jpeg_quality", "curve"], "metrics": ["enabled", "host", "port"],
    "ray": ["address", "num_cpus", "max_restarts"], "status_interval_s": None, "duration_s": None,
}
_yaml_scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                 | st.text(max_size=10)
                 | st.sampled_from(["tcp://127.0.0.1:5556", "tcp://0.0.0.0:99999", "http://u:pw@127.0.0.1:1/x",
                                    "rtsp://", "~nouser/x", "x" * 300, str(SAMPLE_CLIP), "0", "-1", "../x",
                                    "nope.key_secret", "/etc/passwd", "/dev/null", "."]))
_yaml_values = st.recursive(_yaml_scalars, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
_curve = st.fixed_dictionaries({}, optional={"server_secret_key": _yaml_values, "authorized_clients": _yaml_values,
                                             "other": _yaml_values}) | _yaml_values
_stream = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["cam", "cam", "a b", ""]) | _yaml_values,
    "source": _yaml_scalars, "loop": _yaml_values, "pace": _yaml_values, "fps": _yaml_values}) | _yaml_values


def _section(name: str) -> st.SearchStrategy:
    keys = _sections[name]
    if name == "streams":
        return st.lists(_stream, max_size=3) | _yaml_values
    if keys is None:
        return _yaml_values
    values = {key: (_curve if key == "curve" else _yaml_values) for key in keys}
    return st.fixed_dictionaries({}, optional=values) | _yaml_values


_documents = st.fixed_dictionaries({}, optional={name: _section(name) for name in _sections}) | _yaml_values
_document_texts = (_documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True))
                   | st.text(max_size=80)
                   | st.lists(st.sampled_from(["streams:", "\n", "  - ", "name: a", "source: ", "[", "]", "{", "}",
                                               ":", "- ", "&a ", "*a", "!!binary ", "!!python/object:os.system ",
                                               "<<: ", '"', "'", "\t", "publisher:", "  curve:", "    ", "null",
                                               "#", "---", "...", "%YAML 1.1", "\x00", "\ufeff", "é"]),
                              max_size=30).map("".join))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_document_texts)
@example(text="[" * 5000)
@example(text="streams:\n  - name: a\n    source: " + "y" * 300 + "\n")
@example(text="publisher:\n  curve:\n    server_secret_key: " + "k" * 300 + "\n    authorized_clients: null\n")
@example(text="publisher: {curve: {server_secret_key: /dev/null, authorized_clients: /}}\n")
@example(text="publisher: {curve: {server_secret_key: \"a\\0b\", authorized_clients: \"~nouser/k\"}}\n")
def test_load_config_raises_only_one_line_config_errors(tmp_path_factory, text):
    """Any file is a ServiceConfig or a ConfigError whose message is one line."""
    path = tmp_path_factory.mktemp("fuzz") / "fervid.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, message
        assert message.startswith(f"config file {path}")
    else:
        assert isinstance(config, ServiceConfig)


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"streams: [\x80]\n"])
def test_load_config_of_bytes_that_are_not_utf8(tmp_path, raw):
    path = tmp_path / "fervid.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and "cannot be read" in str(info.value)
