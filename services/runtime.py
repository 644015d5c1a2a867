"""What every fervid actor shares: names in the Ray namespace, telemetry, restart reporting."""
from __future__ import annotations

import warnings
from collections import deque

import ray

from fervid.services.metrics import MetricsBuffer, MetricsShipper

NAMESPACE = "fervid"
CONTROLLER_NAME = "controller"


def actor_name(kind: str, key: str | int = "") -> str:
    """Name of a service actor in the ``fervid`` namespace (``capture:cam1``, ``detector:0``)."""
    return f"{kind}:{key}" if key != "" else kind


def was_restarted() -> bool:
    """True inside an actor that Ray reconstructed after its process died."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's property touches a deprecated accessor
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


class Telemetry:
    """An actor's metrics buffer, shipped to the metrics actor in the background.

    Calls are fire-and-forget; their results are collected later so that a metrics actor that
    is restarting costs a few lost measurements and no error spam.
    """

    def __init__(self, metrics_actor, interval_s: float = 0.5):
        self.buffer = MetricsBuffer()
        self._metrics_actor = metrics_actor
        self._pending: deque = deque()
        self._shipper = MetricsShipper(self.buffer, self._send, interval_s) if metrics_actor else None

    def _send(self, batch: dict) -> None:
        while self._pending:
            done, _ = ray.wait([self._pending[0]], timeout=0)
            if not done and len(self._pending) < 20:
                break
            ref = self._pending.popleft()
            try:
                ray.get(ref, timeout=0 if done else 1)
            except Exception:
                pass
        self._pending.append(self._metrics_actor.record.remote(batch))

    def report_restart_if_any(self, kind: str) -> bool:
        """Count this process as a restart when Ray reconstructed the actor after a crash."""
        restarted = was_restarted()
        if restarted:
            self.buffer.inc("fervid_actor_restarts_total", kind=kind)
        return restarted

    def close(self, wait_s: float = 0.0) -> None:
        """Ship what is left; with ``wait_s``, also wait that long for the metrics actor to take
        it (a process about to exit would otherwise lose its last measurements in flight)."""
        if self._shipper is not None:
            self._shipper.stop()
            if wait_s > 0 and self._pending:
                ray.wait(list(self._pending), num_returns=len(self._pending), timeout=wait_s)
