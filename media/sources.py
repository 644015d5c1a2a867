"""What a stream reads from: a video file, an RTSP or HTTP(S) URL, or a local device index.

Parsing is strict so that a typo is rejected when the stream is attached rather than showing
up later as a camera that is merely "down". URLs may carry credentials; ``SourceSpec.display``
is the form with the password replaced, and it is the only form that may reach logs, metrics
or status output.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class SourceKind(enum.Enum):
    FILE = "file"
    RTSP = "rtsp"
    HTTP = "http"
    DEVICE = "device"

    @property
    def is_live(self) -> bool:
        """Live sources deliver at their own rate; files are paced (or not) by us."""
        return self is not SourceKind.FILE


_NETWORK_SCHEMES = {"rtsp": SourceKind.RTSP, "rtsps": SourceKind.RTSP,
                    "http": SourceKind.HTTP, "https": SourceKind.HTTP}


@dataclass(frozen=True)
class SourceSpec:
    kind: SourceKind
    location: str | int
    """What OpenCV opens: a path, a URL (with credentials) or a device index."""

    @property
    def display(self) -> str:
        """The location safe to show: URL passwords redacted."""
        if isinstance(self.location, int):
            return f"device {self.location}"
        if self.kind in (SourceKind.RTSP, SourceKind.HTTP):
            return redact_url(self.location)
        return self.location


def redact_url(url: str) -> str:
    """Replace the password (and a lone user token) of a URL with ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    safe = f"{user}:***" if ":" in userinfo else "***"
    return urlunsplit((parts.scheme, f"{safe}@{host}", parts.path, parts.query, parts.fragment))


def parse_source(source: str | int, check_exists: bool = True) -> SourceSpec:
    """Classify a source; raises ``ValueError`` with a one-line reason when it is unusable.

    Files must exist when the stream is attached (a missing file is almost always a typo); a
    network camera may be down at that moment and is retried with back-off instead. Once
    attached, a file that vanishes is a source that is down, so running actors parse with
    ``check_exists=False``.
    """
    if isinstance(source, bool):
        raise ValueError(f"source must be a path, URL or device index, got {source!r}")
    if isinstance(source, int):
        if source < 0:
            raise ValueError(f"device index must be >= 0, got {source}")
        return SourceSpec(SourceKind.DEVICE, source)
    text = str(source).strip()
    if not text:
        raise ValueError("source is empty")
    if text.isdigit():
        return SourceSpec(SourceKind.DEVICE, int(text))
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            return _file_source(text[len("file://"):], check_exists)
        if scheme not in _NETWORK_SCHEMES:
            raise ValueError(f"unsupported source scheme {scheme!r} in {redact_url(text)} "
                             "(use a file path, rtsp://, http:// or https://, or a device index)")
        try:
            parts = urlsplit(text)
            _ = parts.port  # raises ValueError when out of range
        except ValueError:
            raise ValueError(f"source URL {redact_url(text)} is malformed (bad port?)") from None
        if not parts.hostname:
            raise ValueError(f"source URL {redact_url(text)} has no host")
        return SourceSpec(_NETWORK_SCHEMES[scheme], text)
    return _file_source(text, check_exists)


def _file_source(path_text: str, check_exists: bool = True) -> SourceSpec:
    if "\0" in path_text:
        raise ValueError("source path contains a NUL byte")
    try:
        path = Path(path_text).expanduser()
    except RuntimeError:
        raise ValueError(f"source {path_text!r}: cannot expand '~' (unknown user or no home directory)") from None
    if not check_exists:
        return SourceSpec(SourceKind.FILE, str(path))
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as exc:  # a name too long for the file system, a folder we may not read
        raise ValueError(f"source {path_text!r} cannot be checked: {exc.strerror or exc.__class__.__name__}") from None
    if not exists:
        raise ValueError(f"source {path_text!r} is not an existing file, a device index or an "
                         "rtsp:// / http(s):// URL")
    if not is_file:
        raise ValueError(f"source {path_text!r} is not a regular file")
    return SourceSpec(SourceKind.FILE, str(path))
