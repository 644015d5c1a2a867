"""Security of fervid's network side (issue 8), with real sockets on 127.0.0.1 and a real Ray.

- ZMQ CURVE on the publisher: encryption (bytes on the wire recorded by a TCP relay) and client
  authentication (a monitor whose key is not authorized, or that does not speak CURVE, receives
  nothing while an authorized one keeps receiving); key files checked by the config loader and
  the command line; ``fervid keys`` makes usable key pairs.
- The receiving side caps frame sizes before reading them and survives garbage.
- Nothing in services/ or gui/ unpickles what arrives over a socket.
- The real service listens on 127.0.0.1 only, and camera passwords never reach status, metrics,
  error messages or logs.
"""
from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
import zmq
from zmq.utils.monitor import recv_monitor_message

from fervid.services.config import ConfigError, load_config, parse_config
from fervid.comms.messages import MAX_FRAME_BYTES, StreamMessage, decode_message, encode_message
from tests.conftest import REPO, SAMPLE_CLIP, run_fervid
from tests.helpers.zmq_helpers import FakeService, frame_jpeg, make_message

WAIT_S = 15.0
"""Upper bound for things that should happen at once; generous for a busy 2-core machine."""

SILENCE_S = 3.0
"""How long a rejected subscriber is watched for receiving nothing while others receive."""


# -- keys and sockets ----------------------------------------------------------------------------

@pytest.fixture
def keys(tmp_path):
    """Key pairs as an operator makes them with ``fervid keys``: the publisher's, and two monitors',
    of which only alice's public key is in the publisher's authorized folder."""
    from fervid.comms.curve import generate_key_pair

    server_public, server_secret = generate_key_pair(tmp_path / "service", "server")
    alice_public, alice_secret = generate_key_pair(tmp_path / "alice", "alice")
    mallory_public, mallory_secret = generate_key_pair(tmp_path / "mallory", "mallory")
    authorized = tmp_path / "service" / "monitors"
    authorized.mkdir()
    shutil.copy(alice_public, authorized / "alice.key")
    return SimpleNamespace(server_public=server_public, server_secret=server_secret, authorized=authorized,
                           alice_public=alice_public, alice_secret=alice_secret,
                           mallory_public=mallory_public, mallory_secret=mallory_secret, root=tmp_path)


def curve_config(server_secret, authorized):
    """A ``publisher.curve`` section through the real config loader."""
    return parse_config({"publisher": {"curve": {
        "server_secret_key": str(server_secret),
        "authorized_clients": None if authorized is None else str(authorized)}}}).publisher.curve


def bound_publisher(curve=None):
    """A real ``PublisherSocket`` on a free loopback port (below the ephemeral range, see
    tests/gui/zmq_helpers.py)."""
    from fervid.comms.publisher_socket import PublisherSocket

    for _ in range(100):
        publisher = PublisherSocket(f"tcp://127.0.0.1:{random.randrange(20000, 32000)}", curve)
        if publisher.error is None:
            return publisher
        publisher.close()
        assert "cannot bind" in publisher.error, publisher.error
    raise AssertionError("no free port found")


class Sub:
    """A plain SUB socket, optionally a CURVE client set up by hand (not through fervid.comms.curve,
    so a mistake there cannot hide in the test), with a monitor of its connection events."""

    def __init__(self, endpoint: str, topic: bytes = b"", server_public: Path | None = None,
                 client_secret: Path | None = None):
        import zmq.auth

        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RECONNECT_IVL, 100)
        if server_public is not None:
            self.socket.curve_serverkey = zmq.auth.load_certificate(server_public)[0]
            if client_secret is not None:
                self.socket.curve_publickey, self.socket.curve_secretkey = zmq.auth.load_certificate(client_secret)
            else:
                self.socket.curve_publickey, self.socket.curve_secretkey = zmq.curve_keypair()
        self._monitor = self.socket.get_monitor_socket()
        self.events: list[int] = []
        self.socket.setsockopt(zmq.SUBSCRIBE, topic)
        self.socket.connect(endpoint)
        self.messages: list[StreamMessage] = []

    def drain(self) -> None:
        while self.socket.poll(0):
            self.messages.append(decode_message(self.socket.recv_multipart()))  # must be valid
        while self._monitor.poll(0):
            self.events.append(recv_monitor_message(self._monitor)["event"])

    def close(self) -> None:
        self.socket.disable_monitor()
        self._monitor.close(linger=0)
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def subs():
    made: list[Sub] = []

    def make(*args, **kwargs) -> Sub:
        made.append(Sub(*args, **kwargs))
        return made[-1]

    yield make
    for sub in made:
        sub.close()


def publish_while(publisher, subscribers, until=None, seconds: float | None = None, stream: str = "cam1",
                  start_seq: int = 0) -> int:
    """Publish a real message every 20 ms (draining subscriptions like the actor does) and let
    every subscriber read, until ``until()`` holds (failing after WAIT_S) or for ``seconds``.
    Returns the last seq sent."""
    seq = start_seq
    deadline = time.monotonic() + (seconds if seconds is not None else WAIT_S)
    while True:
        publisher.drain_subscriptions()
        seq += 1
        publisher.send(encode_message(make_message(stream, seq)))
        time.sleep(0.02)
        for sub in subscribers:
            sub.drain()
        if until is not None and until():
            return seq
        if time.monotonic() > deadline:
            if until is not None:
                raise AssertionError("condition not reached while publishing")
            return seq


# -- CURVE at the publisher ----------------------------------------------------------------------

def test_only_the_authorized_monitor_receives_and_the_publisher_keeps_serving(keys, subs):
    """alice (authorized key) receives valid messages; mallory (a key of her own), a SUB without
    CURVE, and a SUB that has the server's public key but no key of its own all reach the port
    and get nothing; none of them even subscribes (nothing else becomes watched)."""
    publisher = bound_publisher(curve_config(keys.server_secret, keys.authorized))
    try:
        alice = subs(publisher.endpoint, b"cam1", keys.server_public, keys.alice_secret)
        intruders = [subs(publisher.endpoint, b"", keys.server_public, keys.mallory_secret),
                     subs(publisher.endpoint, b""),
                     subs(publisher.endpoint, b"", keys.server_public)]
        seq = publish_while(publisher, [alice, *intruders], until=lambda: publisher.is_watched("cam1"))
        seq = publish_while(publisher, [alice, *intruders], seconds=SILENCE_S, start_seq=seq)
        assert len(alice.messages) >= 10, len(alice.messages)
        assert [m.seq for m in alice.messages] == sorted({m.seq for m in alice.messages})
        assert alice.messages[-1].jpeg == frame_jpeg()
        for intruder in intruders:
            assert intruder.messages == []
            assert zmq.EVENT_CONNECTED in intruder.events, "the intruder never reached the port"
            assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in intruder.events
        assert zmq.EVENT_HANDSHAKE_SUCCEEDED in alice.events
        assert not publisher.is_watched("other-stream"), "an intruder's subscription to everything got in"
        # The intruders keep retrying; alice keeps receiving all the while.
        before = len(alice.messages)
        publish_while(publisher, [alice, *intruders], seconds=1.5, start_seq=seq)
        assert len(alice.messages) >= before + 5
        assert all(intruder.messages == [] for intruder in intruders)
    finally:
        publisher.close()


def test_a_key_added_to_the_authorized_folder_is_admitted_without_a_restart(keys, subs):
    """A refused client is told so and ZMQ does not retry it (no hammering); once its key is in
    the folder, its next connection is admitted by the running publisher."""
    publisher = bound_publisher(curve_config(keys.server_secret, keys.authorized))
    try:
        refused = subs(publisher.endpoint, b"cam1", keys.server_public, keys.mallory_secret)
        publish_while(publisher, [refused], until=lambda: zmq.EVENT_HANDSHAKE_FAILED_AUTH in refused.events)
        publish_while(publisher, [refused], seconds=1.0)
        assert refused.messages == [] and refused.events.count(zmq.EVENT_CONNECTED) == 1
        shutil.copy(keys.mallory_public, keys.authorized / "mallory.key")
        mallory = subs(publisher.endpoint, b"cam1", keys.server_public, keys.mallory_secret)
        publish_while(publisher, [mallory], until=lambda: len(mallory.messages) >= 3)
        (keys.authorized / "mallory.key").unlink()  # revoked: new connections are refused again
        again = subs(publisher.endpoint, b"cam1", keys.server_public, keys.mallory_secret)
        publish_while(publisher, [again], until=lambda: zmq.EVENT_HANDSHAKE_FAILED_AUTH in again.events)
        assert again.messages == []
    finally:
        publisher.close()


def test_encryption_without_client_keys_admits_any_curve_client_but_no_plain_one(keys, subs):
    """``authorized_clients: null``: any monitor holding the server's public key receives (with a
    one-off key of its own); a SUB without CURVE still gets nothing."""
    publisher = bound_publisher(curve_config(keys.server_secret, None))
    try:
        anyone = subs(publisher.endpoint, b"cam1", keys.server_public)
        plain = subs(publisher.endpoint, b"")
        publish_while(publisher, [anyone, plain], until=lambda: len(anyone.messages) >= 5)
        publish_while(publisher, [anyone, plain], seconds=1.0)
        assert plain.messages == [] and zmq.EVENT_CONNECTED in plain.events
    finally:
        publisher.close()


class Relay:
    """A TCP relay on loopback recording every byte that passes, server to client: what someone
    watching the network between the publisher and a monitor would see."""

    def __init__(self, upstream_port: int):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream_port = upstream_port
        self.seen = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source, target, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    with self._lock:
                        self.seen += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.mark.parametrize("encrypted", [True, False])
def test_messages_on_the_wire_are_encrypted(keys, subs, encrypted):
    """Through a recording relay, the stream name, header and JPEG are readable without CURVE
    (the control case, proving the relay sees the traffic) and nowhere to be found with it."""
    publisher = bound_publisher(curve_config(keys.server_secret, keys.authorized) if encrypted else None)
    relay = Relay(int(publisher.endpoint.rsplit(":", 1)[1]))
    try:
        alice = subs(f"tcp://127.0.0.1:{relay.port}", b"cam1", keys.server_public if encrypted else None,
                     keys.alice_secret if encrypted else None)
        publish_while(publisher, [alice], until=lambda: len(alice.messages) >= 5)
        with relay._lock:
            seen = bytes(relay.seen)
        assert len(seen) > 5 * len(frame_jpeg())
        plaintext = [b'"ts_capture"', b"cam1", frame_jpeg()[:64], frame_jpeg()[-64:]]
        found = [needle in seen for needle in plaintext]
        assert found == ([False] * 4 if encrypted else [True] * 4)
    finally:
        relay.close()
        publisher.close()


def test_publisher_actor_on_ray_serves_curve_and_reports_bad_keys(ray_session, keys, subs):
    """The real ``PublisherActor``: an authorized monitor receives what it publishes, mallory does
    not; a key file gone bad by the time the actor starts is one line from ``check()``."""
    from fervid.models.faces import Faces
    from fervid.services.inference import Classification
    from fervid.services.publisher import PublisherActor
    from tests.helpers.zmq_helpers import frame_bgr
    from tests.services.service_helpers import free_port

    ray = ray_session
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    actor = PublisherActor.remote(endpoint, 80, None, curve=curve_config(keys.server_secret, keys.authorized))
    try:
        assert ray.get(actor.check.remote(), timeout=60) is None
        alice = subs(endpoint, b"cam1", keys.server_public, keys.alice_secret)
        mallory = subs(endpoint, b"", keys.server_public, keys.mallory_secret)
        height, width = frame_bgr().shape[:2]
        faces = Faces(np.array([[10, 20, 60, 60]], np.int32), np.full((1, 7), 1 / 7, np.float32))
        classification = Classification(faces, 0.01, 0.01)
        deadline = time.monotonic() + WAIT_S
        seq = 0
        while len(alice.messages) < 3:
            assert time.monotonic() < deadline, "the authorized monitor received nothing from the actor"
            seq += 1
            meta = {"stream": "cam1", "seq": seq, "ts_capture": time.time(), "width": width, "height": height,
                    "fps": 25.0}
            ray.get(actor.publish.remote(meta, classification, frame_jpeg()), timeout=30)
            time.sleep(0.05)
            alice.drain()
            mallory.drain()
        assert alice.messages[-1].jpeg[:2] == b"\xff\xd8" and len(alice.messages[-1].faces) == 1
        assert mallory.messages == [] and zmq.EVENT_HANDSHAKE_SUCCEEDED not in mallory.events
    finally:
        ray.get(actor.close.remote(), timeout=30)
        ray.kill(actor)

    broken = curve_config(keys.server_secret, keys.authorized)
    keys.server_secret.write_text("not a key\n")
    actor = PublisherActor.remote(f"tcp://127.0.0.1:{free_port()}", 80, None, curve=broken)
    try:
        error = ray.get(actor.check.remote(), timeout=60)
        assert error is not None and "\n" not in error
        assert error.startswith("cannot set up CURVE for the ZMQ publisher: ") and "server.key_secret" in error
    finally:
        ray.kill(actor)


# -- key files: the config, ``fervid keys`` and ``fervid monitor`` -------------------------------

def write_curve_config(folder: Path, curve: dict) -> Path:
    path = folder / "fervid.yaml"
    path.write_text(yaml.safe_dump({"publisher": {"curve": curve}}))
    return path


def test_curve_key_paths_are_relative_to_the_config_file(keys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path / "alice")  # anywhere but the config's folder
    path = write_curve_config(keys.root / "service", {"server_secret_key": "server.key_secret",
                                                     "authorized_clients": "monitors"})
    curve = load_config(path).publisher.curve
    assert curve.server_secret_key == keys.server_secret.resolve()
    assert curve.authorized_clients == keys.authorized.resolve()
    assert parse_config({}).publisher.curve is None, "CURVE is an option, off by default"


def _break(keys, how: str) -> dict:
    """A ``publisher.curve`` section that is wrong in one way, relative to the service folder."""
    good = {"server_secret_key": "server.key_secret", "authorized_clients": "monitors"}
    service = keys.root / "service"
    if how == "missing secret file":
        return {**good, "server_secret_key": "nope.key_secret"}
    if how == "public key as the secret":
        return {**good, "server_secret_key": "server.key"}
    if how == "garbage secret file":
        (service / "garbage.key_secret").write_text("hello\n")
        return {**good, "server_secret_key": "garbage.key_secret"}
    if how == "short key":
        (service / "short.key_secret").write_text('curve\n    public-key = "abc"\n    secret-key = "def"\n')
        return {**good, "server_secret_key": "short.key_secret"}
    if how == "mismatched pair":
        public = keys.alice_public.read_text().split('public-key = "')[1][:40]
        text = keys.server_secret.read_text()
        mixed = re.sub(r'public-key = "[^"]*"', f'public-key = "{public}"', text)
        (service / "mixed.key_secret").write_text(mixed)
        return {**good, "server_secret_key": "mixed.key_secret"}
    if how == "folder is a file":
        return {**good, "authorized_clients": "server.key"}
    if how == "missing folder":
        return {**good, "authorized_clients": "nobody"}
    if how == "empty folder":
        (service / "empty").mkdir()
        return {**good, "authorized_clients": "empty"}
    if how == "bad client key":
        (keys.authorized / "broken.key").write_text("not a certificate\n")
        return good
    if how == "unknown key":
        return {**good, "allow": "everyone"}
    raise ValueError(how)


@pytest.mark.parametrize("how, key, fragment", [
    ("missing secret file", "server_secret_key", "does not exist"),
    ("public key as the secret", "server_secret_key", "holds no secret key"),
    ("garbage secret file", "server_secret_key", "not a CURVE key file"),
    ("short key", "server_secret_key", "not a 40-character Z85 CURVE key"),
    ("mismatched pair", "server_secret_key", "does not belong to the secret key"),
    ("folder is a file", "authorized_clients", "not a folder"),
    ("missing folder", "authorized_clients", "does not exist"),
    ("empty folder", "authorized_clients", "holds no public key files"),
    ("bad client key", "authorized_clients", "broken.key is not a CURVE key file"),
    ("unknown key", "allow", "unknown key"),
])
def test_bad_key_files_are_one_line_config_errors_naming_the_key(keys, how, key, fragment):
    path = write_curve_config(keys.root / "service", _break(keys, how))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and f"publisher.curve.{key}" in message and fragment in message, message
    assert str(path) in message


def test_fervid_up_with_a_bad_key_file_fails_fast_in_one_line(keys):
    path = write_curve_config(keys.root / "service", _break(keys, "public key as the secret"))
    started = time.monotonic()
    result = run_fervid("up", "--config", path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    assert "publisher.curve.server_secret_key" in result.stderr and "holds no secret key" in result.stderr
    assert result.stdout == ""
    assert time.monotonic() - started < 30, "key files must be checked before Ray starts"


def test_fervid_keys_writes_a_usable_pair_and_never_overwrites(tmp_path):
    from fervid.comms.curve import load_key_pair, load_public_key

    folder = tmp_path / "new" / "keys"
    result = run_fervid("keys", folder, "--name", "door-monitor", timeout=60)
    assert result.returncode == 0, result.stderr
    public, secret = folder / "door-monitor.key", folder / "door-monitor.key_secret"
    assert str(public) in result.stdout and str(secret) in result.stdout
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600, "the secret key must be readable by its owner only"
    assert "secret-key" not in public.read_text(), "the public file must not carry the secret"
    assert load_key_pair(secret)[0] == load_public_key(public)
    before = secret.read_bytes()
    again = run_fervid("keys", folder, "--name", "door-monitor", timeout=60)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
    assert secret.read_bytes() == before
    bad = run_fervid("keys", folder, "--name", "../escape", timeout=60)
    assert bad.returncode == 2 and "key name" in bad.stderr and not (tmp_path / "new" / "escape.key").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--server-key", "{root}/nope.key"], "does not exist"),
    (["--server-key", "{root}/service/server.key", "--client-key", "{root}/alice/alice.key"], "holds no secret key"),
    (["--client-key", "{root}/alice/alice.key_secret"], "--client-key needs --server-key"),
])
def test_monitor_with_bad_key_options_is_a_one_line_error(keys, args, fragment):
    result = run_fervid("monitor", "cam1", "--endpoint", "tcp://127.0.0.1:1", "--screenshot",
                        keys.root / "shot.png", "--frames", "1",
                        *[a.format(root=keys.root) for a in args], timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and fragment in result.stderr, result.stderr


def test_fervid_monitor_subscribes_over_curve(keys, tmp_path):
    """The real ``fervid monitor`` with --server-key and --client-key renders frames from a CURVE
    publisher; the same command without the keys gets none (its own time-out, one line)."""
    publisher = bound_publisher(curve_config(keys.server_secret, keys.authorized))
    stop = threading.Event()

    def publish() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            publisher.send(encode_message(make_message("cam1", seq)))
            stop.wait(0.05)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        shot = tmp_path / "monitor.png"
        result = run_fervid("monitor", "cam1", "--endpoint", publisher.endpoint, "--server-key", keys.server_public,
                            "--client-key", keys.alice_secret, "--screenshot", shot, "--frames", "3", timeout=120)
        assert result.returncode == 0, result.stderr
        assert shot.stat().st_size > 1000
        from fervid.gui.monitor import MonitorError, run_monitor

        # In this process, with a short time-out: the plain monitor and mallory's see nothing.
        with pytest.raises(MonitorError):
            run_monitor("cam1", publisher.endpoint, tmp_path / "plain.png", 1, timeout_s=SILENCE_S)
        with pytest.raises(MonitorError) as refused:
            run_monitor("cam1", publisher.endpoint, tmp_path / "mallory.png", 1, timeout_s=SILENCE_S,
                        server_key=keys.server_public, client_key=keys.mallory_secret)
        error = str(refused.value)
        assert error.count("\n") == 0 and "rejected this monitor's key" in error, error
        assert not (tmp_path / "plain.png").exists() and not (tmp_path / "mallory.png").exists()
    finally:
        stop.set()
        thread.join(5)
        publisher.close()


# -- the real GUI receiver: CURVE, oversize frames, garbage --------------------------------------

def poll_for(receiver, seconds: float) -> list[StreamMessage]:
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = receiver.poll()
        if message is not None:
            got.append(message)
        time.sleep(0.02)
    return got


def test_gui_receiver_over_curve_only_with_an_authorized_key(keys):
    from fervid.comms.receiver import StreamReceiver
    from fervid.comms.curve import CurveKeyError

    publisher = bound_publisher(curve_config(keys.server_secret, keys.authorized))
    receivers = [StreamReceiver("cam1", publisher.endpoint, server_key=keys.server_public, client_key=key)
                 for key in (keys.alice_secret, keys.mallory_secret)]
    receivers.append(StreamReceiver("cam1", publisher.endpoint))
    alice, mallory, plain = receivers
    try:
        got: list[StreamMessage] = []

        class Poller:  # publish_while's subscriber interface, polling like the monitor's timer
            def __init__(self, receiver, into):
                self.receiver, self.into = receiver, into

            def drain(self):
                message = self.receiver.poll()
                if message is not None:
                    self.into.append(message)

        others: list[StreamMessage] = []
        pollers = [Poller(alice, got), Poller(mallory, others), Poller(plain, others)]
        publish_while(publisher, pollers, until=lambda: len(got) >= 3)
        publish_while(publisher, pollers, seconds=SILENCE_S)
        assert others == [] and mallory.received == 0 and plain.received == 0
        assert alice.rejected is None and "rejected this monitor's key" in mallory.rejected
        assert got[-1].jpeg == frame_jpeg() and alice.malformed == 0
        with pytest.raises(CurveKeyError, match="holds no secret key"):
            StreamReceiver("cam1", publisher.endpoint, server_key=keys.server_public, client_key=keys.alice_public)
        with pytest.raises(ValueError, match="needs the publisher's public key"):
            StreamReceiver("cam1", publisher.endpoint, client_key=keys.alice_secret)
    finally:
        for receiver in receivers:
            receiver.close()
        publisher.close()


def test_monitor_window_says_refused_and_why_instead_of_waiting(keys, qtbot):
    """An interactive monitor whose key the publisher does not admit, or that speaks plain ZMQ to a
    CURVE publisher, shows "refused" with the reason ("waiting" would be a wait forever: ZMQ never
    retries a refused key); alice's shows frames."""
    from fervid.gui.monitor import LinkState, MonitorWindow

    publisher = bound_publisher(curve_config(keys.server_secret, keys.authorized))
    alice = MonitorWindow("cam1", publisher.endpoint, server_key=keys.server_public, client_key=keys.alice_secret)
    mallory = MonitorWindow("cam1", publisher.endpoint, server_key=keys.server_public, client_key=keys.mallory_secret)
    plain = MonitorWindow("cam1", publisher.endpoint)
    windows = (alice, mallory, plain)
    for window in windows:
        qtbot.addWidget(window)

    tickers = [SimpleNamespace(drain=w.tick) for w in windows]  # one monitor tick per message sent
    try:
        publish_while(publisher, tickers,
                      until=lambda: alice.frames_shown >= 3 and mallory.link_state is LinkState.REFUSED)
        publish_while(publisher, tickers, seconds=SILENCE_S)
        assert alice.link_state is LinkState.CONNECTED and alice.link_label.text() == "connected"
        assert mallory.frames_shown == 0 and mallory.link_label.text() == "refused"
        assert "rejected this monitor's key" in mallory.link_label.toolTip()
        assert mallory.video.placeholder().startswith("refused: the publisher rejected this monitor's key")
        assert plain.frames_shown == 0 and plain.link_state is LinkState.REFUSED
        assert "does the publisher need --server-key?" in plain.link_label.toolTip()
    finally:
        for window in windows:
            window.shutdown()
        publisher.close()


def test_gui_receiver_drops_oversize_frames_unread_and_survives_garbage():
    """From a raw XPUB: wrong frame counts, junk headers, a non-JPEG image, a frame just over
    the cap, then valid messages. Garbage is counted and skipped; the oversize frame makes ZMQ
    drop the connection before reading it (MAXMSGSIZE), the SUB reconnects, and the next valid
    message is shown."""
    from fervid.comms.receiver import StreamReceiver

    service = FakeService()
    events = service.socket.get_monitor_socket()
    receiver = StreamReceiver("cam1", service.endpoint)
    try:
        assert receiver._socket.getsockopt(zmq.MAXMSGSIZE) == MAX_FRAME_BYTES
        service.wait_for_subscribers(receiver.poll, cam1=1)
        garbage = [[b"cam1"], [b"cam1", b"{}"], [b"cam1", b"\xff\xfe", b""], [b"cam1", b"[1, 2]", b""],
                   [b"cam1", json.dumps({"stream": "cam1"}).encode(), b"GIF89a"],
                   [b"cam1", b"{" * 100_000, b""], [b"cam1", b"", b"", b"", b""]]
        for frames in garbage:
            service.send_frames(frames)
        service.send(make_message("cam1", seq=1))
        got = []
        deadline = time.monotonic() + WAIT_S
        while not got:
            assert time.monotonic() < deadline, "the valid message after the garbage never came"
            got = [m for m in [receiver.poll()] if m is not None]
            time.sleep(0.01)
        assert got[0].seq == 1 and receiver.malformed == len(garbage)

        _events(events)  # only what happens from here on counts
        received = receiver.received
        service.send_frames([b"cam1", b"{}", b"\xff\xd8" + bytes(MAX_FRAME_BYTES)])  # 2 bytes over the cap
        deadline = time.monotonic() + WAIT_S
        seen: list[int] = []
        while zmq.EVENT_DISCONNECTED not in seen:
            assert time.monotonic() < deadline, "the receiver did not drop the connection sending an oversize frame"
            assert receiver.poll() is None
            seen += _events(events)
            time.sleep(0.01)
        # ZMQ reconnects by itself; the SUB re-subscribes when polled; valid messages show again.
        service.wait_for_subscribers(receiver.poll, cam1=2)
        seq = 1
        got = []
        deadline = time.monotonic() + WAIT_S
        while not got:
            assert time.monotonic() < deadline, "no valid message after the oversize frame"
            seq += 1
            service.send(make_message("cam1", seq=seq))
            time.sleep(0.05)
            got = [m for m in [receiver.poll()] if m is not None]
        assert got[0].seq == seq and receiver.reconnects >= 1
        assert receiver.received == received + 1 and receiver.malformed == len(garbage), \
            "the oversize message must never be read at all"
    finally:
        receiver.close()
        service.socket.disable_monitor()
        events.close(linger=0)
        service.close()


def _events(monitor) -> list[int]:
    out = []
    while monitor.poll(0):
        out.append(recv_monitor_message(monitor)["event"])
    return out


# -- nothing unpickled ----------------------------------------------------------------------------

_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
_UNSAFE_CALLS = {"recv_pyobj", "recv_serialized", "loads_pyobj", "unsafe_load", "full_load"}


def unsafe_deserialization(source: str) -> list[str]:
    """What in ``source`` could unpickle (or build arbitrary objects from) received bytes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNSAFE_MODULES:
            found.append(f"from {node.module} import")
        elif isinstance(node, ast.Attribute) and node.attr in _UNSAFE_CALLS:
            found.append(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml":
            found.append("yaml.load")  # yaml.safe_load only
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
            found.append(node.func.id)
    return found


def test_the_unpickling_check_catches_what_it_looks_for():
    sample = ("import pickle\nfrom cloudpickle import loads\nimport zmq\n"
              "def f(s):\n    return s.recv_pyobj(), s.recv_serialized(g), yaml.load(x), eval(y)\n")
    assert sorted(unsafe_deserialization(sample)) == sorted(
        ["import pickle", "from cloudpickle import", "recv_pyobj", "recv_serialized", "yaml.load", "eval"])
    assert unsafe_deserialization("import json\nm = sock.recv_multipart()\nyaml.safe_load(t)\n") == []


def test_services_and_gui_never_unpickle_what_arrives():
    """services/ and gui/ read sockets only as bytes (JSON and JPEG, validated by decode_message)
    and YAML only with safe_load. Ray's own serialization between actors is Ray's business."""
    files = sorted((REPO / "services").rglob("*.py")) + sorted((REPO / "gui").rglob("*.py"))
    assert len(files) > 10
    problems = {str(path.relative_to(REPO)): found for path in files
                if (found := unsafe_deserialization(path.read_text(encoding="utf-8")))}
    assert problems == {}


# -- the real service: loopback only, no passwords anywhere ---------------------------------------

PASSWORD = "s3cretPW-4711"
"""In camera URLs only; it must never be seen anywhere else."""


def _default_host_endpoint(port: int) -> str:
    from fervid.services.config import PublisherConfig

    return f"{PublisherConfig().endpoint.rsplit(':', 1)[0]}:{port}"


def _closed_port() -> int:
    from tests.services.service_helpers import free_port

    return free_port()


@pytest.fixture(scope="module")
def secret_service(ray_session, tmp_path_factory):
    """The real service on the test session's Ray, with the default hosts (free ports), CURVE
    on, and two cameras whose URLs carry a password: one MJPEG camera up, one down."""
    from fervid.comms.curve import generate_key_pair
    from fervid.services.service import start_service, stop_service
    from tests.helpers.mjpeg_server import MjpegServer
    from tests.services.service_helpers import free_port, wait_for

    root = tmp_path_factory.mktemp("secret-service")
    _, server_secret = generate_key_pair(root, "server")
    alice_public, alice_secret = generate_key_pair(root / "alice", "alice")
    (root / "monitors").mkdir()
    shutil.copy(alice_public, root / "monitors" / "alice.key")
    camera = MjpegServer.from_video(SAMPLE_CLIP, fps=10, count=20).start()
    zmq_port, metrics_port = free_port(), free_port()
    config_path = root / "fervid.yaml"
    config_path.write_text(yaml.safe_dump({
        "streams": [{"name": "door", "source": f"http://viewer:{PASSWORD}@127.0.0.1:{camera.port}/stream.mjpg"},
                    {"name": "gate", "source": f"rtsp://admin:{PASSWORD}@127.0.0.1:{_closed_port()}/live"}],
        "publisher": {"endpoint": _default_host_endpoint(zmq_port),
                      "curve": {"server_secret_key": "server.key_secret", "authorized_clients": "monitors"}},
        "metrics": {"port": metrics_port},
        "capture": {"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "open_timeout_s": 2.0,
                    "read_timeout_s": 2.0},
    }))
    config = load_config(config_path)
    assert config.metrics.host == "127.0.0.1" and config.publisher.endpoint.startswith("tcp://127.0.0.1:")
    controller = start_service(config)
    info = SimpleNamespace(controller=controller, config=config, zmq_port=zmq_port, metrics_port=metrics_port,
                           address=ray_session.get_runtime_context().gcs_address, root=root,
                           server_public=root / "server.key", alice_secret=alice_secret, camera=camera)

    def streams():
        return {s["name"]: s for s in service_status(info)["streams"]}

    wait_for(lambda: streams()["door"].get("frames_processed", 0) > 3
             and streams()["gate"].get("state") == "down" and streams()["gate"].get("last_error"),
             120, what="door to process frames and gate to be down with an error")
    yield info
    stop_service(controller)
    camera.stop()


def service_status(service) -> dict:
    import ray

    return ray.get(service.controller.status.remote(), timeout=60)


def test_fervid_listeners_bind_loopback_only(secret_service):
    """With the default hosts, the ZMQ publisher and /metrics listen on 127.0.0.1 and nothing
    else (found by port among every listening socket on the machine)."""
    import psutil

    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    for port in (secret_service.zmq_port, secret_service.metrics_port):
        addresses = {c.laddr.ip for c in listening if c.laddr.port == port}
        assert addresses == {"127.0.0.1"}, (port, addresses)


def test_camera_passwords_never_reach_status_metrics_or_errors(secret_service):
    import urllib.request

    status = service_status(secret_service)
    text = json.dumps(status)
    assert PASSWORD not in text
    streams = {s["name"]: s for s in status["streams"]}
    assert streams["door"]["source"].startswith("http://viewer:***@127.0.0.1:")
    assert streams["gate"]["source"].startswith("rtsp://admin:***@127.0.0.1:")
    assert "admin:***@" in streams["gate"]["last_error"]  # the error names the camera, redacted

    from tests.services.service_helpers import wait_for

    def door_metrics() -> str | None:
        """The /metrics page once it holds the door stream's processed series."""
        with urllib.request.urlopen(f"http://127.0.0.1:{secret_service.metrics_port}/metrics", timeout=30) as reply:
            text = reply.read().decode()
        return text if 'fervid_frames_processed_total{stream="door"}' in text else None

    # Status reads the capture's counts directly; its metrics reach /metrics with the next
    # shipment (every 0.5 s, later on a loaded machine), so wait for the door's series to appear.
    metrics = wait_for(door_metrics, 30, what="the door stream's series on /metrics")
    assert PASSWORD not in metrics

    for args in (("status", "--json"), ("status",)):
        result = run_fervid(*args, "--address", secret_service.address, timeout=120)
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr and "admin:***@" in result.stdout

    # attach, from the command line: the reply, and the errors for a bad URL or a duplicate name.
    import ray

    port = _closed_port()
    attached = run_fervid("attach", f"http://cam:{PASSWORD}@127.0.0.1:{port}/x.mjpg", "--name", "porch",
                          "--address", secret_service.address, timeout=120)
    assert attached.returncode == 0, attached.stderr
    assert PASSWORD not in attached.stdout + attached.stderr and "cam:***@" in attached.stdout
    for source, name in ((f"ftp://cam:{PASSWORD}@127.0.0.1/x", "bad"), (f"http://cam:{PASSWORD}@127.0.0.1:99999/x", "bad"),
                         (f"http://cam:{PASSWORD}@127.0.0.1:{port}/y", "porch")):
        refused = run_fervid("attach", source, "--name", name, "--address", secret_service.address, timeout=120)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
        assert PASSWORD not in refused.stdout + refused.stderr, refused.stderr
    detached = run_fervid("detach", "porch", "--address", secret_service.address, timeout=120)
    assert detached.returncode == 0 and PASSWORD not in detached.stdout + detached.stderr
    assert PASSWORD not in json.dumps(ray.get(secret_service.controller.status.remote(), timeout=60))


def test_camera_passwords_never_reach_ray_logs(secret_service, ray_session):
    """The driver's, the actors' and Ray's own log files of this session (where the service's
    actors run) do not contain the password, though a camera was opened, failed and retried."""
    session = Path(ray_session._private.worker._global_node.get_session_dir_path())
    logs = [p for p in (session / "logs").rglob("*") if p.is_file()]
    assert any(p.name.startswith("worker-") for p in logs), "no worker logs found to check"
    leaks = [str(p) for p in logs if PASSWORD.encode() in p.read_bytes()]
    assert leaks == []


def test_service_publishes_over_curve_when_configured(secret_service, subs):
    """End to end: with publisher.curve in the config, alice's monitor receives the service's
    messages and a plain subscriber receives nothing."""
    endpoint = f"tcp://127.0.0.1:{secret_service.zmq_port}"
    alice = subs(endpoint, b"door", secret_service.server_public, secret_service.alice_secret)
    plain = subs(endpoint, b"")
    deadline = time.monotonic() + WAIT_S
    while len(alice.messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        alice.drain()
        plain.drain()
    assert len(alice.messages) >= 3 and plain.messages == []


# -- fervid up on bad input, and as a user runs it with passwords in the config -------------------

@pytest.mark.parametrize("document, fragment", [
    ({"metrics": {"port": "nine"}}, "metrics.port:"),
    ({"capture": {"read_timeout_s": [1]}}, "capture.read_timeout_s:"),
    ({"streams": [{"name": "cam", "source": str(SAMPLE_CLIP)}, {"name": "cam", "source": str(SAMPLE_CLIP)}]},
     "duplicate stream name 'cam'"),
    ({"streams": [{"name": "cam", "source": f"http://u:{PASSWORD}@127.0.0.1:99999/x"}]}, "streams.0.source:"),
    ({"streams": [{"name": "cam", "source": f"ftp://u:{PASSWORD}@127.0.0.1/x"}]}, "unsupported source scheme 'ftp'"),
    ({"publisher": {"endpoint": "tcp://127.0.0.1:5556/x"}}, "publisher.endpoint:"),
])
def test_fervid_up_rejects_bad_input_in_one_line_before_starting_ray(tmp_path, document, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    started = time.monotonic()
    result = run_fervid("up", "--config", path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("fervid up: error: "), result.stderr
    assert fragment in result.stderr and str(path) in result.stderr, result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert time.monotonic() - started < 30, "bad input must be reported before Ray starts"


@pytest.mark.slow
def test_fervid_up_never_prints_or_logs_a_camera_password(tmp_path):
    """``fervid up`` as a user runs it (its own embedded Ray, logs in its own RAY_TMPDIR), with a
    camera that works and one that is down, both with passwords: its output shows the cameras
    redacted, and no log file of its Ray session holds the password."""
    import tempfile

    from tests.helpers.mjpeg_server import MjpegServer
    from tests.services.service_helpers import free_port

    ray_tmp = Path(tempfile.mkdtemp(prefix="fv", dir="/tmp"))  # short: Ray's socket paths are limited
    try:
        with MjpegServer.from_video(SAMPLE_CLIP, fps=10, count=20) as camera:
            path = tmp_path / "cameras.yaml"
            path.write_text(yaml.safe_dump({
                "streams": [{"name": "door", "source": f"http://viewer:{PASSWORD}@127.0.0.1:{camera.port}/stream.mjpg"},
                            {"name": "gate", "source": f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/live"}],
                "publisher": {"endpoint": f"tcp://127.0.0.1:{free_port()}"}, "metrics": {"port": free_port()},
                "ray": {"num_cpus": 2}, "status_interval_s": 2.0, "duration_s": 25,
                "capture": {"reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "open_timeout_s": 2.0},
            }))
            result = subprocess.run([sys.executable, "-m", "fervid.cli.main", "up", "--config", str(path)], cwd=REPO,
                                    capture_output=True, text=True, timeout=300,
                                    env={**os.environ, "RAY_TMPDIR": str(ray_tmp)})
        output = result.stdout + result.stderr
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in output
        assert re.search(r"door: up, .*processed", result.stdout), result.stdout
        assert re.search(r"gate: down.*admin:\*\*\*@127\.0\.0\.1", result.stdout), result.stdout
        logs = [p for p in ray_tmp.rglob("*") if p.is_file() and not p.is_symlink()]
        assert any(p.name.startswith("worker-") for p in logs), "no worker logs found to check"
        leaks = [str(p) for p in logs if PASSWORD.encode() in p.read_bytes()]
        assert leaks == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
