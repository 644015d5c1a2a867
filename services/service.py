"""The driver side of the service: connect to Ray, start or find the controller, stop cleanly.

``fervid up`` and the tests start a service through ``start_service``; ``fervid attach``,
``detach`` and ``status`` find the running controller by name with ``find_controller``. Errors
that the user can fix become ``FervidError`` with one line of text.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import ray

from fervid.errors import FervidError
from fervid.services.allocator import configure_allocator
from fervid.services.config import ServiceConfig
from fervid.ray_loopback import keep_loopback
from fervid.services.runtime import CONTROLLER_NAME, NAMESPACE


class NoServiceError(FervidError):
    """No fervid service runs where we looked."""


def unwrap(ref, timeout: float | None = None):
    """``ray.get`` that turns a ``FervidError`` raised inside an actor into the same error here."""
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, FervidError):
            raise type(cause)(str(cause)) from None
        raise


def _check_reachable(address: str) -> None:
    """Fail fast for a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    if address == "auto":
        return
    target = urlsplit(address if "://" in address else f"tcp://{address}")
    if not target.hostname or not target.port:
        raise FervidError(f"Ray address {address!r} must be 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((target.hostname, target.port), timeout=3):
            pass
    except OSError as exc:
        raise NoServiceError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}") from None


def _use_token_auth_for_explicit_address() -> None:
    """Send this machine's Ray token to an explicitly addressed cluster too.

    Ray enables token authentication by itself only for clusters it finds with ``auto``; for
    ``HOST:PORT`` it expects ``RAY_AUTH_MODE=token``. fervid keeps authentication on: when a
    token is available (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``)
    and the user has not chosen a mode, use it.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"
        try:  # Ray read its settings at import time: make it see the new mode (what ray.init does)
            from ray._raylet import Config

            Config.initialize("")
        except Exception:
            pass


def prepare_address(address: str) -> None:
    """Before ``ray.init(address)``: fail fast for an unreachable cluster, and bring the token."""
    _check_reachable(address)
    # ``auto`` with RAY_ADDRESS=HOST:PORT is an explicit address to Ray, so it needs the token too.
    if address != "auto" or os.environ.get("RAY_ADDRESS", "auto") != "auto":
        _use_token_auth_for_explicit_address()


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address``, or start an embedded Ray on 127.0.0.1 when it is ``None``.

    Returns True when this process started Ray (and so must shut it down).
    """
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "namespace": NAMESPACE}
    if address is None:
        # Before Ray starts: the raylet, and so every worker, inherit the allocator setting.
        configure_allocator()
        # "local": a new Ray of our own even when `ray start` left a cluster on this machine (Ray
        # would otherwise join the newest one it finds, and an embedded run would land there).
        # On loopback: none of its listeners is reachable from another machine.
        with keep_loopback():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
        return True
    prepare_address(address)
    try:
        # So that `fervid status` and the other commands reach such an embedded Ray by its
        # 127.0.0.1 address (Ray would replace it by this machine's outward one); any other address
        # is used as before.
        with keep_loopback():
            ray.init(address=address, **quiet)
    except ConnectionError as exc:
        raise NoServiceError(f"no Ray cluster at {address}: {str(exc).splitlines()[0][:200]}") from None
    return False


def find_controller():
    """The running service's controller, or ``NoServiceError``."""
    try:
        return ray.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
    except ValueError:
        raise NoServiceError("no fervid service is running in this Ray cluster (start one with `fervid up`)") from None


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(config: ServiceConfig) -> None:
    """Refuse to start when the metrics or ZMQ port is taken (checked before Ray starts)."""
    if config.metrics.enabled and not _port_free(config.metrics.host, config.metrics.port):
        raise FervidError(f"metrics port {config.metrics.host}:{config.metrics.port} is already in use "
                          "(set metrics.port in the config)")
    host, port = config.publisher.endpoint[len("tcp://"):].rsplit(":", 1)
    if host != "*" and not _port_free(host, int(port)):
        raise FervidError(f"ZMQ endpoint {config.publisher.endpoint} is already in use "
                          "(set publisher.endpoint in the config)")


def start_service(config: ServiceConfig):
    """Create the controller (named, detached) on this node and start the pipeline."""
    from fervid.services.controller import Controller

    try:
        find_controller()
    except NoServiceError:
        pass
    else:
        raise FervidError("a fervid service is already running in this Ray cluster "
                          "(use `fervid attach`/`fervid status`, or stop it first)")
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node_id = ray.get_runtime_context().get_node_id()
    controller = Controller.options(
        name=CONTROLLER_NAME, namespace=NAMESPACE, lifetime="detached", num_cpus=0,
        max_restarts=config.ray.max_restarts, max_concurrency=16,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(config, node_id)
    try:
        unwrap(controller.start.remote())
    except BaseException:
        stop_service(controller)
        raise
    return controller


def stop_service(controller, timeout_s: float = 60.0) -> None:
    """Stop every stream and actor, close the sockets, remove the controller."""
    try:
        ray.get(controller.shutdown.remote(), timeout=timeout_s)
    except Exception:
        pass
    try:
        ray.kill(controller, no_restart=True)
    except Exception:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the name is released asynchronously
        try:
            ray.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)


def format_status_line(stream: dict) -> str:
    """One line per stream for ``fervid up`` and ``fervid status``.

    The state comes first and is the controller's verdict: a stream whose source delivers but
    whose frames are not processed reads ``stalled``, and says for how long, never ``up``; its
    ``fps`` is then the source's rate, not what was processed.
    """
    state = stream.get("state", "?")
    parts = [f"{stream['name']}: {state}"]
    if stream.get("fps") is not None:
        parts.append(f"{stream['fps']:.1f} fps" + (" captured" if state == "stalled" else ""))
    for key, label in (("frames_processed", "processed"), ("frames_dropped", "dropped"), ("faces", "faces"),
                       ("reconnects", "reconnects")):
        if stream.get(key) is not None:
            parts.append(f"{stream[key]} {label}")
    if stream.get("stalls"):
        parts.append(f"{stream['stalls']} stalls")
    if state != "up" and stream.get("open_attempts"):  # a source that never opens still shows it is retried
        parts.append(f"{stream['open_attempts']} open attempts")
    tracking = stream.get("tracking")
    if tracking:
        parts.append(f"{tracking['tracks_alive']} tracks, {100 * tracking['scanned_share']:.0f}% of pixels scanned")
    if stream.get("latency_ms_p50") is not None:
        parts.append(f"latency p50 {stream['latency_ms_p50']:.0f} ms p95 {stream['latency_ms_p95']:.0f} ms")
    if state == "stalled":
        parts.append(f"(nothing processed for {stream.get('stalled_s', 0):.0f} s while frames arrive)")
    elif stream.get("last_error") and state != "up":
        parts.append(f"({stream['last_error']})")
    return ", ".join(parts)
