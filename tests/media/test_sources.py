"""parse_source classifies what a stream reads; redact_url keeps passwords out of anything shown."""
from __future__ import annotations

import pytest

from fervid.media.sources import SourceKind, SourceSpec, parse_source, redact_url
from tests.conftest import SAMPLE_CLIP


def test_existing_file_is_a_file_source():
    """A plain path to an existing file is read as a (non-live) file."""
    spec = parse_source(str(SAMPLE_CLIP))
    assert spec == SourceSpec(SourceKind.FILE, str(SAMPLE_CLIP))
    assert not spec.kind.is_live
    assert spec.display == str(SAMPLE_CLIP)


def test_file_url_is_the_same_file():
    """file:///abs/path is accepted as a spelling of the path itself."""
    assert parse_source(f"file://{SAMPLE_CLIP}") == SourceSpec(SourceKind.FILE, str(SAMPLE_CLIP))


def test_surrounding_whitespace_is_ignored():
    """Copy-pasted sources often carry a trailing newline or spaces."""
    assert parse_source(f"  {SAMPLE_CLIP}\n").location == str(SAMPLE_CLIP)


@pytest.mark.parametrize("source, index", [(0, 0), (3, 3), ("0", 0), ("12", 12)])
def test_device_indices_as_int_or_digit_string(source, index):
    """A camera index may come from YAML as an int or from the command line as a string."""
    spec = parse_source(source)
    assert spec == SourceSpec(SourceKind.DEVICE, index)
    assert spec.kind.is_live
    assert spec.display == f"device {index}"


@pytest.mark.parametrize("url, kind", [
    ("rtsp://192.168.1.20:554/stream1", SourceKind.RTSP),
    ("rtsps://cam.example/live", SourceKind.RTSP),
    ("RTSP://cam.example/live", SourceKind.RTSP),
    ("http://127.0.0.1:8080/stream.mjpg", SourceKind.HTTP),
    ("https://cam.example/video?fps=10", SourceKind.HTTP),
])
def test_network_urls(url, kind):
    """RTSP and HTTP(S) URLs are live sources, kept verbatim for OpenCV (they need not be up yet)."""
    spec = parse_source(url)
    assert spec == SourceSpec(kind, url)
    assert spec.kind.is_live
    assert spec.display == url  # nothing to redact


def test_missing_file_is_rejected_with_its_name(tmp_path):
    """A missing file is almost always a typo: rejected at attach time, naming the path."""
    missing = tmp_path / "gone.mp4"
    with pytest.raises(ValueError, match="gone.mp4.*not an existing file"):
        parse_source(str(missing))
    with pytest.raises(ValueError, match="gone.mp4"):
        parse_source(f"file://{missing}")


def test_running_actors_can_parse_a_file_that_has_vanished(tmp_path):
    """check_exists=False: an attached file that disappeared is a source that is down, not invalid."""
    missing = tmp_path / "gone.mp4"
    assert parse_source(str(missing), check_exists=False) == SourceSpec(SourceKind.FILE, str(missing))
    assert parse_source(f"file://{missing}", check_exists=False).kind is SourceKind.FILE
    with pytest.raises(ValueError, match="unsupported source scheme"):  # other checks still apply
        parse_source("ftp://cam/x", check_exists=False)


def test_directory_is_rejected(tmp_path):
    """A folder exists but cannot be played."""
    with pytest.raises(ValueError, match="not a regular file"):
        parse_source(str(tmp_path))


@pytest.mark.parametrize("source", ["ftp://cam.example/video", "udp://239.0.0.1:1234", "smb://host/share/clip.mp4"])
def test_unknown_scheme_is_rejected(source):
    """Only files, rtsp(s)://, http(s):// and device indices are supported; the message names the scheme."""
    scheme = source.split(":", 1)[0]
    with pytest.raises(ValueError, match=f"unsupported source scheme '{scheme}'"):
        parse_source(source)


@pytest.mark.parametrize("source", ["rtsp:///stream1", "http://:8080/x", "https://user:pw@/x"])
def test_url_without_host_is_rejected(source):
    """A URL with no host can never connect: rejected now rather than retried forever."""
    with pytest.raises(ValueError, match="has no host"):
        parse_source(source)


@pytest.mark.parametrize("source", [-1, -7])
def test_negative_device_index_is_rejected(source):
    with pytest.raises(ValueError, match="must be >= 0"):
        parse_source(source)


@pytest.mark.parametrize("source", ["", "   ", True, False])
def test_empty_and_boolean_sources_are_rejected(source):
    """YAML turns `source: yes` into True, which must not become device 1."""
    with pytest.raises(ValueError):
        parse_source(source)


def test_unknown_home_directory_is_a_value_error():
    """A path starting with ~someone who does not exist is a bad source like any other: ValueError
    (the config and attach paths turn only ValueError into a one-line error)."""
    with pytest.raises(ValueError):
        parse_source("~no_such_user_fervid_test/clip.mp4")


@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:s3cret@10.0.0.5:554/h264", "rtsp://admin:***@10.0.0.5:554/h264"),
    ("https://tok3n@cam.example/stream", "https://***@cam.example/stream"),
    ("rtsp://admin:p@ss@word@cam/x", "rtsp://admin:***@cam/x"),
    ("http://admin:@cam/x", "http://admin:***@cam/x"),
    ("rtsp://cam.example/live", "rtsp://cam.example/live"),
])
def test_redact_url_hides_passwords_and_tokens(url, shown):
    """user:password@ keeps the user name; a lone token@ is hidden entirely; '@' inside passwords too."""
    assert redact_url(url) == shown


def test_redact_url_survives_unparseable_urls():
    """Even a URL that urlsplit rejects (bad IPv6 bracket) never shows its credentials."""
    shown = redact_url("rtsp://admin:s3cret@[::1/stream")
    assert "s3cret" not in shown and "admin" not in shown


@pytest.mark.parametrize("url", ["rtsp://admin:s3cret@10.0.0.5/h264", "https://s3cret@cam.example/x",
                                 "http://viewer:s3cret@127.0.0.1:8080/stream.mjpg"])
def test_display_never_contains_the_password(url):
    """display is what reaches logs, metrics and status: the secret must not be in it,
    while location keeps it for OpenCV."""
    spec = parse_source(url)
    assert "s3cret" in spec.location
    assert "s3cret" not in spec.display
    assert spec.display.startswith(url.split("://")[0] + "://")


@pytest.mark.parametrize("url", ["ftp://admin:s3cret@cam/x", "rtsp://admin:s3cret@/x"])
def test_error_messages_do_not_leak_the_password(url):
    """A rejected URL is echoed in the error, redacted."""
    with pytest.raises(ValueError) as info:
        parse_source(url)
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)
