"""ZMQ CURVE for the results stream: encryption, and which monitors may subscribe.

Keys are ZeroMQ's certificate files as ``zmq.auth.create_certificates`` (``fervid keys``) writes
them: ``NAME.key`` holds a public key (safe to hand out), ``NAME.key_secret`` the key pair (keep
it private). The publisher loads its own ``.key_secret`` and a folder of the public ``.key``
files of the monitors allowed in; a monitor loads the publisher's ``.key`` and its own
``.key_secret``. A peer whose key is not in the folder, or that does not speak CURVE, completes no
handshake, so it never sees a byte of a message and never subscribes.

Only ``zmq.auth``'s file format and authenticator are used; no Ray or Qt here.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from fervid.errors import FervidError

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
ZAP_DOMAIN = "fervid"
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class CurveKeyError(FervidError):
    """A key file or key folder is missing, unreadable or not a CURVE certificate."""


def _z85_key(value: bytes | None, what: str, path: Path) -> bytes:
    if not value:
        raise CurveKeyError(f"{path} holds no {what}")
    try:
        if len(value) != 40 or len(z85.decode(value)) != 32:
            raise ValueError
    except (ValueError, KeyError, IndexError, OverflowError):
        raise CurveKeyError(f"{path}: the {what} is not a 40-character Z85 CURVE key") from None
    return bytes(value)


def _is(path: Path, kind: str) -> bool:
    """``path.is_file()`` / ``is_dir()`` that treats an unusable name (too long, NUL) as absent."""
    try:
        return path.is_file() if kind == "file" else path.is_dir()
    except (OSError, ValueError):
        return False


def _certificate(path: str | Path) -> tuple[bytes | None, bytes | None]:
    path = Path(path)
    if not _is(path, "file"):
        raise CurveKeyError(f"key file {path} does not exist or is not a file")
    try:
        return zmq.auth.load_certificate(path)
    except ValueError:
        raise CurveKeyError(f"{path} is not a CURVE key file (no public-key line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CurveKeyError(f"key file {path} cannot be read: {exc.__class__.__name__}") from None


def load_public_key(path: str | Path) -> bytes:
    """The Z85 public key of a ``.key`` (or ``.key_secret``) file."""
    public, _ = _certificate(path)
    return _z85_key(public, "public key", Path(path))


def load_key_pair(path: str | Path) -> tuple[bytes, bytes]:
    """``(public, secret)`` from a ``.key_secret`` file; the two must belong together."""
    public, secret = _certificate(path)
    public = _z85_key(public, "public key", Path(path))
    secret = _z85_key(secret, "secret key (use the .key_secret file, not the public .key)", Path(path))
    if zmq.curve_public(secret) != public:
        raise CurveKeyError(f"{path}: the public key does not belong to the secret key")
    return public, secret


def load_authorized_keys(folder: str | Path) -> set[bytes]:
    """The public keys of every ``*.key`` file in ``folder``; a folder without any is an error
    (nobody could subscribe)."""
    folder = Path(folder)
    if not _is(folder, "dir"):
        raise CurveKeyError(f"authorized key folder {folder} does not exist or is not a folder")
    try:
        files = sorted(p for p in folder.iterdir() if p.name.endswith(PUBLIC_SUFFIX))
    except OSError as exc:
        raise CurveKeyError(f"authorized key folder {folder} cannot be read: {exc.__class__.__name__}") from None
    if not files:
        raise CurveKeyError(f"authorized key folder {folder} holds no public key files (*{PUBLIC_SUFFIX})")
    return {load_public_key(path) for path in files}


def generate_key_pair(folder: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``folder/name.key`` (public) and ``folder/name.key_secret`` (owner-only); never
    overwrites. Returns both paths."""
    import re

    if not re.fullmatch(KEY_NAME_PATTERN, name):
        raise CurveKeyError(f"key name {name!r} must be letters, digits, '_', '.' or '-' (at most 64)")
    folder = Path(folder)
    public, secret = folder / f"{name}{PUBLIC_SUFFIX}", folder / f"{name}{SECRET_SUFFIX}"
    for path in (public, secret):
        if path.exists():
            raise CurveKeyError(f"{path} already exists (delete it first to replace the key)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o077)  # the secret file is created owner-only, never world-readable
        try:
            public_file, secret_file = zmq.auth.create_certificates(folder, name)
        finally:
            os.umask(old_umask)
        os.chmod(public_file, 0o644)
        os.chmod(secret_file, 0o600)
    except OSError as exc:
        raise CurveKeyError(f"cannot write keys to {folder}: {exc.strerror or exc.__class__.__name__}") from None
    return Path(public_file), Path(secret_file)


class _AuthorizedKeys:
    """ZAP credentials check: a client key must be one of the ``*.key`` files in a folder.

    The folder is read again when its modification time changes, so a monitor's key can be
    added (or removed, for new connections) without restarting the service; a file that does
    not parse is skipped then, as a key that is not there.
    """

    def __init__(self, folder: Path, keys: set[bytes]):
        self._folder = folder
        self._keys = keys
        self._mtime = self._stamp()
        self._lock = threading.Lock()

    def _stamp(self) -> float | None:
        try:
            return self._folder.stat().st_mtime_ns
        except OSError:
            return None

    def _reload(self) -> None:
        keys = set()
        try:
            files = [p for p in self._folder.iterdir() if p.name.endswith(PUBLIC_SUFFIX)]
        except OSError:
            files = []
        for path in files:
            try:
                keys.add(load_public_key(path))
            except CurveKeyError:
                continue
        self._keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        with self._lock:
            stamp = self._stamp()
            if stamp != self._mtime:
                self._mtime = stamp
                self._reload()
            return bytes(key) in self._keys  # the authenticator passes the Z85 form


class CurveServer:
    """CURVE on a publishing socket: its key pair, and a ZAP authenticator admitting only the
    authorized client keys (any client key when ``authorized_clients`` is ``None``: encryption
    without client authentication)."""

    def __init__(self, context: zmq.Context, secret_key_file: str | Path,
                 authorized_clients: str | Path | None):
        self.public_key, self._secret_key = load_key_pair(secret_key_file)
        keys = load_authorized_keys(authorized_clients) if authorized_clients is not None else None
        from zmq.auth.thread import ThreadAuthenticator

        self._auth = ThreadAuthenticator(context)
        self._auth.start()
        if keys is None:
            self._auth.configure_curve(domain=ZAP_DOMAIN, location=zmq.auth.CURVE_ALLOW_ANY)
        else:
            self._auth.configure_curve_callback(domain=ZAP_DOMAIN,
                                                credentials_provider=_AuthorizedKeys(Path(authorized_clients), keys))

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server; call before it binds."""
        socket.setsockopt(zmq.CURVE_SERVER, 1)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self._secret_key)
        socket.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())

    def stop(self) -> None:
        self._auth.stop()


def apply_curve_client(socket: zmq.Socket, server_key_file: str | Path,
                       client_secret_file: str | Path | None = None) -> None:
    """Make ``socket`` a CURVE client of the publisher whose public key is in ``server_key_file``;
    without ``client_secret_file`` a fresh key pair is used (accepted only by a publisher that
    admits any client). Call before it connects."""
    server_public = load_public_key(server_key_file)
    if client_secret_file is not None:
        public, secret = load_key_pair(client_secret_file)
    else:
        public, secret = zmq.curve_keypair()
    socket.setsockopt(zmq.CURVE_SERVERKEY, server_public)
    socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
