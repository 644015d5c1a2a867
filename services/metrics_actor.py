"""MetricsActor: owns the Prometheus registry and serves ``/metrics`` for the whole cluster.

Every other actor ships its ``MetricsBuffer`` here (see ``services.metrics``), so one scrape of
one endpoint describes every stream and stage wherever the actors run. It is pinned to the node
``fervid up`` runs on, so the default ``127.0.0.1:9108`` is reachable where the user is.
"""
from __future__ import annotations

import os
import ray
from prometheus_client import start_http_server

from fervid.services.metrics import MetricsRegistry
from fervid.services.runtime import was_restarted


@ray.remote
class MetricsActor:
    KIND = "metrics"

    def __init__(self, host: str, port: int, serve: bool = True):
        self._registry = MetricsRegistry()
        self._server = None
        self._error: str | None = None
        if was_restarted():
            self._registry.apply({"inc": [(("fervid_actor_restarts_total", (("kind", self.KIND),)), 1.0)]})
        if serve:
            try:
                self._server, _ = start_http_server(port, addr=host, registry=self._registry.registry)
            except OSError as exc:
                self._error = f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"

    def pid(self) -> int:
        """The actor's process id (for operators and fault-injection tests)."""
        return os.getpid()

    def check(self) -> str | None:
        return self._error

    def record(self, batch: dict) -> None:
        self._registry.apply(batch)

    def forget_stream(self, stream: str) -> None:
        self._registry.forget_stream(stream)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
