"""The service configuration: strict, one-line errors, and the shipped YAML equal to the defaults."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fervid.services.config import (
    CaptureConfig, ConfigError, DetectorConfig, InferenceConfig, MetricsConfig, PublisherConfig,
    RayConfig, ServiceConfig, StreamConfig, TrackingConfig, load_config, parse_config)
from tests.conftest import REPO, SAMPLE_CLIP, run_fervid

DEPLOY_YAML = REPO / "deploy" / "fervid.yaml"


def stream(name="cam", source=None, **extra) -> dict:
    return {"name": name, "source": str(SAMPLE_CLIP) if source is None else source, **extra}


def config_error(raw) -> str:
    """The message of the ConfigError that parse_config raises for ``raw`` (always one line)."""
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def write(tmp_path: Path, text: str, name="fervid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults and the shipped document -------------------------------------------------------

def test_defaults_run_the_sample_clip_on_localhost_only():
    """No config means: the bundled clip, looped and paced, and nothing listening beyond 127.0.0.1."""
    config = load_config(None)
    assert config == ServiceConfig() == parse_config({}) == parse_config(None)
    (only,) = config.streams
    assert (only.name, Path(only.source), only.loop, only.pace) == ("sample", SAMPLE_CLIP, True, True)
    assert config.publisher.endpoint.startswith("tcp://127.0.0.1:")
    assert config.metrics.host == "127.0.0.1"
    assert config.ray.address is None


def test_shipped_yaml_equals_the_defaults(monkeypatch, tmp_path):
    """deploy/fervid.yaml documents every default; if either changes alone, this fails.
    Run from another folder: its relative clip path is resolved against the file's folder."""
    monkeypatch.chdir(tmp_path)
    assert load_config(DEPLOY_YAML) == ServiceConfig()


def test_shipped_yaml_names_every_key():
    """Every setting of every section appears in the shipped document (it is the reference)."""
    document = yaml.safe_load(DEPLOY_YAML.read_text())
    sections = {"capture": CaptureConfig, "detector": DetectorConfig, "tracking": TrackingConfig,
                "inference": InferenceConfig,
                "publisher": PublisherConfig, "metrics": MetricsConfig, "ray": RayConfig}
    assert set(document) == set(ServiceConfig.model_fields)
    for key, model in sections.items():
        assert set(document[key]) == set(model.model_fields), key
    assert set(document["streams"][0]) == set(StreamConfig.model_fields)


# -- errors name the key -----------------------------------------------------------------------

@pytest.mark.parametrize("raw, key", [
    ({"stream": []}, "'stream'"),
    ({"streams": [stream(sorce="x")]}, "'streams.0.sorce'"),
    ({"capture": {"max_inflight": 3}}, "'capture.max_inflight'"),
    ({"publisher": {"endpoint": "tcp://127.0.0.1:5556", "port": 1}}, "'publisher.port'"),
])
def test_unknown_keys_are_errors_naming_the_key(raw, key):
    """A typo must not silently fall back to a default."""
    message = config_error(raw)
    assert f"unknown key {key}" in message


def test_misspelt_required_key_is_reported_as_the_unknown_key():
    """`sorce:` for `source:` makes two problems (unknown 'sorce', missing 'source'); the one line
    must name the typo itself, which is what the user has to fix."""
    message = config_error({"streams": [{"name": "a", "sorce": str(SAMPLE_CLIP)}]})
    assert "unknown key 'streams.0.sorce'" in message
    assert message.endswith("(and 1 more problem)")


def test_unknown_key_in_a_file_names_the_file_and_the_key(tmp_path):
    path = write(tmp_path, f"streams:\n  - name: a\n    source: {SAMPLE_CLIP}\n    sorce: typo\n")
    with pytest.raises(ConfigError, match=r"fervid\.yaml: unknown key 'streams\.0\.sorce'"):
        load_config(path)


@pytest.mark.parametrize("raw, fragment", [
    ({"capture": {"max_in_flight": "many"}}, "capture.max_in_flight"),
    ({"capture": {"max_in_flight": 0}}, "capture.max_in_flight"),
    ({"metrics": {"port": 70000}}, "metrics.port"),
    ({"inference": {"max_batch": 2.5}}, "inference.max_batch"),
    ({"streams": [stream(loop="sometimes")]}, "streams.0.loop"),
    ({"streams": [stream(fps=0)]}, "streams.0.fps"),
    ({"streams": {"name": "a"}}, "streams"),
    ({"capture": []}, "capture"),
    ({"status_interval_s": -1}, "status_interval_s"),
])
def test_wrong_types_and_ranges_name_the_key(raw, fragment):
    assert f": {fragment}:" in config_error(raw)


def test_several_problems_report_the_first_and_a_count():
    message = config_error({"capture": {"max_in_flight": 0}, "metrics": {"port": 0}, "status_interval_s": 0})
    assert message.endswith("(and 2 more problems)")


def test_backoff_cap_below_first_delay_is_rejected():
    assert "reconnect_max_s must be >= reconnect_initial_s" in config_error(
        {"capture": {"reconnect_initial_s": 5, "reconnect_max_s": 1}})


def test_duplicate_stream_names_are_rejected():
    """Names are ZMQ topics and metric labels: two streams cannot share one."""
    message = config_error({"streams": [stream("cam"), stream("other"), stream("cam")]})
    assert "duplicate stream name 'cam'" in message


@pytest.mark.parametrize("name", ["", "has space", "-leading-dash", "a/b", "x" * 65, "caméra"])
def test_invalid_stream_names_are_rejected(name):
    assert "streams.0.name" in config_error({"streams": [stream(name)]})


@pytest.mark.parametrize("name", ["cam1", "Front_Door", "lobby.2", "a", "x" * 64])
def test_valid_stream_names_are_accepted(name):
    assert parse_config({"streams": [stream(name)]}).streams[0].name == name


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5556", "udp://127.0.0.1:5556", "tcp://127.0.0.1",
                                      "tcp://:5556", "tcp://127.0.0.1:5556/x", "ipc:///tmp/fervid"])
def test_invalid_publisher_endpoints_are_rejected(endpoint):
    assert "publisher.endpoint: endpoint must look like tcp://HOST:PORT" in config_error(
        {"publisher": {"endpoint": endpoint}})


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:0", "tcp://127.0.0.1:65536"])
def test_impossible_publisher_ports_are_rejected(endpoint):
    assert "publisher.endpoint: endpoint port must be in 1..65535" in config_error(
        {"publisher": {"endpoint": endpoint}})


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5556", "tcp://0.0.0.0:1", "tcp://localhost:65535"])
def test_valid_publisher_endpoints_are_accepted(endpoint):
    assert parse_config({"publisher": {"endpoint": endpoint}}).publisher.endpoint == endpoint


def test_invalid_source_names_the_stream_key(tmp_path):
    message = config_error({"streams": [stream(source=str(tmp_path / "missing.mp4"))]})
    assert "streams.0.source" in message and "missing.mp4" in message


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


# -- the file itself -----------------------------------------------------------------------------

def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_that_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)


def test_invalid_yaml_is_one_line_with_the_line_number(tmp_path):
    path = write(tmp_path, "capture:\n  max_in_flight: 2\n  bad: [unclosed\nmetrics: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and " line " in message


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "fervid.yaml"
    path.write_bytes(b"streams: \xff\xfe\x00\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(path)


def test_empty_file_means_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing set\n")) == ServiceConfig()


# -- relative paths ----------------------------------------------------------------------------

def test_relative_paths_are_resolved_against_the_config_folder(tmp_path, monkeypatch):
    """A config can be started from any folder: its relative paths mean 'next to this file'."""
    media = tmp_path / "media"
    media.mkdir()
    clip = media / "clip.mp4"
    shutil.copy(SAMPLE_CLIP, clip)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "weights").mkdir()
    (conf / "weights" / "mine.keras").write_bytes(b"checked when the actors load it")
    path = write(conf, "streams:\n"
                       "  - {name: rel, source: ../media/clip.mp4}\n"
                       "  - {name: url, source: 'file://../media/clip.mp4'}\n"
                       "  - {name: abs, source: '" + str(clip) + "'}\n"
                       "  - {name: net, source: 'rtsp://cam.example/live'}\n"
                       "  - {name: dev, source: '0'}\n"
                       "  - {name: idx, source: 1}\n"
                       "inference: {model: weights/mine.keras}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    clip = clip.resolve()
    sources = {s.name: s.source for s in config.streams}
    assert sources == {"rel": str(clip), "url": str(clip), "abs": str(clip),
                       "net": "rtsp://cam.example/live", "dev": "0", "idx": 1}
    assert config.inference.model == (conf / "weights" / "mine.keras").resolve()


def test_relative_path_missing_next_to_the_config_is_an_error(tmp_path, monkeypatch):
    """The file is looked for next to the config, not in the working folder."""
    shutil.copy(SAMPLE_CLIP, tmp_path / "clip.mp4")  # present in the working folder...
    conf = tmp_path / "conf"
    conf.mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="streams.0.source"):  # ...but not next to the config
        load_config(write(conf, "streams: [{name: a, source: clip.mp4}]\n"))


# -- robustness: whatever the document holds, only ConfigError comes out ------------------------

def test_non_list_streams_in_a_file_is_a_config_error(tmp_path):
    """`streams: 5` is a user mistake like any other: one-line ConfigError, not a TypeError."""
    with pytest.raises(ConfigError, match="streams"):
        load_config(write(tmp_path, "streams: 5\n"))


def test_nul_byte_in_a_source_path_is_a_config_error(tmp_path):
    """YAML can spell a NUL character ("\\0"); the path resolver must not crash on it."""
    with pytest.raises(ConfigError, match="streams.0.source"):
        load_config(write(tmp_path, 'streams: [{name: a, source: "clip\\0.mp4"}]\n'))


def test_unknown_home_directory_in_a_source_is_a_config_error(tmp_path):
    """~someone-who-does-not-exist/clip.mp4 cannot be expanded: ConfigError, not RuntimeError."""
    with pytest.raises(ConfigError, match="streams.0.source"):
        load_config(write(tmp_path, "streams: [{name: a, source: ~no_such_user_fervid/clip.mp4}]\n"))


_scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats()
            | st.text(max_size=12) | st.sampled_from(["0", "~", "~x/y", "file://", "rtsp://", "http://h:1/x",
                                                     "tcp://127.0.0.1:1", str(SAMPLE_CLIP), "a\x00b"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _section(model) -> st.SearchStrategy:
    keys = st.sampled_from(sorted(model.model_fields)) | st.text(max_size=6)
    return st.dictionaries(keys, _values, max_size=4) | _values


_documents = st.fixed_dictionaries({}, optional={
    "streams": st.lists(_section(StreamConfig), max_size=3) | _values,
    "capture": _section(CaptureConfig), "detector": _section(DetectorConfig),
    "inference": _section(InferenceConfig), "publisher": _section(PublisherConfig),
    "metrics": _section(MetricsConfig), "ray": _section(RayConfig),
    "status_interval_s": _values, "duration_s": _values,
}) | st.dictionaries(st.text(max_size=8), _values, max_size=3) | _values


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_documents, from_file=st.booleans())
def test_fuzz_parse_config_raises_only_config_error(raw, from_file):
    """Any document, read from a file (paths resolved) or not, is a ServiceConfig or a ConfigError."""
    try:
        config = parse_config(raw, base=REPO / "deploy" if from_file else None)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(config, ServiceConfig)


# -- the command line --------------------------------------------------------------------------

def test_fervid_up_with_a_bad_config_fails_fast_in_one_line(tmp_path):
    """The config is checked before Ray starts: exit 2, one stderr line naming the key, no Ray."""
    bad = write(tmp_path, f"streams:\n  - name: a\n    sorce: {SAMPLE_CLIP}\n")
    start = time.monotonic()
    result = run_fervid("up", "--config", bad, timeout=120)
    took = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fervid up: error: ") and "unknown key 'streams.0.sorce'" in lines[0]
    assert str(bad) in lines[0]
    assert result.stdout == ""
    assert took < 30, f"took {took:.1f}s: was Ray started before the config was checked?"


def test_fervid_up_with_invalid_yaml_fails_in_one_line(tmp_path):
    bad = write(tmp_path, "streams: [\n")
    result = run_fervid("up", "--config", bad, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and " line " in lines[0] and "Traceback" not in result.stderr, result.stderr


# -- tracking ----------------------------------------------------------------------------------

def test_tracking_section_builds_the_models_params():
    """Every tracking key reaches the per-stream TrackingParams, and motion regions search from the
    detector's own smallest face."""
    config = parse_config({"tracking": {"full_scan_every": 3, "region_margin": 0.25, "size_ratio": 1.2,
                                        "region_face_px": 40, "full_scan_after_misses": 4, "motion": False,
                                        "motion_full_scan_share": 0.5, "iou_threshold": 0.4, "max_age_s": 2.0,
                                        "smoothing_half_life_s": 0.0, "region_scan_every": 3,
                                        "scan_lost_tracks": False},
                           "detector": {"min_size": 48}})
    params = config.tracking.params(config.detector.min_size)
    assert params.enabled
    assert (params.plan.full_scan_every, params.plan.region_margin, params.plan.size_ratio) == (3, 0.25, 1.2)
    assert (params.plan.region_face_px, params.plan.full_scan_after_misses, params.plan.motion) == (40, 4, False)
    assert (params.plan.motion_full_scan_share, params.plan.min_size) == (0.5, 48)
    assert (params.plan.region_scan_every, params.plan.scan_lost_tracks) == (3, False)
    assert (params.tracker.iou_threshold, params.tracker.max_age_s, params.smoothing_half_life_s) == (0.4, 2.0, 0.0)
    assert not parse_config({"tracking": {"enabled": False}}).tracking.params(60).enabled


@pytest.mark.parametrize("raw, key", [
    ({"tracking": {"full_scan_every": 0}}, "tracking.full_scan_every"),
    ({"tracking": {"size_ratio": 1.0}}, "tracking.size_ratio"),
    ({"tracking": {"region_face_px": 12}}, "tracking.region_face_px"),
    ({"tracking": {"region_scan_every": 0}}, "tracking.region_scan_every"),
    ({"tracking": {"interval": 5}}, "tracking.interval"),
])
def test_bad_tracking_settings_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(raw)
