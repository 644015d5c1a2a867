"""Controller: the named, detached actor that owns a running service.

It wires four parts, each a module with one job: ``Pipeline`` creates every actor (named and
detached, so they outlive a controller crash); ``StreamRegistry`` holds the attached streams and
their capture actors, and keeps a copy in Ray's KV store that a restarted controller adopts;
``check_pool`` replaces detectors and inference actors that died for good; ``StreamHealth``
judges each stream (up is not enough: a stream whose frames arrive but are never processed is
``stalled``). Its health loop runs every second: the pool first, then every capture's status,
judged, kept for ``status``, and acted on: a capture actor that died for good, or that stays
stalled, is replaced by a fresh one for the same stream.
"""
from __future__ import annotations

import os
import threading
import time

import ray

from fervid.services.config import ServiceConfig, StreamConfig
from fervid.services.errors import ServiceError
from fervid.services.metrics import MetricsBuffer
from fervid.services.pipeline import Pipeline
from fervid.services.pool_health import check_pool
from fervid.services.runtime import was_restarted
from fervid.services.stream_health import UP, StallRule, StreamHealth
from fervid.services.stream_registry import Poll, StreamRegistry

HEALTH_INTERVAL_S = 1.0


@ray.remote
class Controller:
    KIND = "controller"

    def __init__(self, config: ServiceConfig, node_id: str):
        self._config = config
        self._pipeline = Pipeline(config, node_id)
        self._streams = StreamRegistry(self._pipeline)
        self._health = StreamHealth(StallRule.for_capture(config.capture))
        self._started = False
        self._stopping = threading.Event()
        self._health_loop_thread = threading.Thread(target=self._health_loop, name="health", daemon=True)
        if was_restarted():
            # Ray restarted us after a crash: adopt the running actors and the attached streams.
            threading.Thread(target=self._recover, name="recover", daemon=True).start()

    def pid(self) -> int:
        """The actor's process id (for operators and fault-injection tests)."""
        return os.getpid()

    # -- start-up ----------------------------------------------------------------------------
    def start(self) -> dict:
        """Create the pipeline and the configured streams; raise ``ServiceError`` if it cannot run."""
        with self._streams.lock:
            if self._started:
                return self.status()
            try:
                self._pipeline.create()
                for stream in self._config.streams:
                    self._streams.add(stream)
            except BaseException:
                self._teardown()
                raise
            self._started = True
            self._streams.save()
            self._streams.rebalance()
        self._health_loop_thread.start()
        return self.status()

    def _recover(self) -> None:
        with self._streams.lock:
            self._pipeline.create(adopt=True)
            self._streams.adopt_saved()
            self._started = True
            self._pipeline.count_restart(self.KIND)
        self._health_loop_thread.start()

    # -- streams -----------------------------------------------------------------------------
    def attach(self, stream: dict | StreamConfig) -> dict:
        """Start capturing a new stream; raises ``ServiceError`` for a bad or duplicate stream."""
        if not isinstance(stream, StreamConfig):
            from pydantic import ValidationError

            from fervid.services.config import format_validation_error

            try:
                stream = StreamConfig.model_validate(stream)
            except ValidationError as exc:
                raise ServiceError(format_validation_error(exc, "stream")) from None
        with self._streams.lock:
            if not self._started:
                raise ServiceError("the service is not started")
            entry = self._streams.add(stream)
            self._streams.save()
            self._streams.rebalance()
        return {"name": stream.name, "source": entry.display}

    def detach(self, name: str) -> dict:
        """Stop a stream and remove its series; its final status."""
        with self._streams.lock:
            entry = self._streams.remove(name)
            self._health.forget(name)
        return self._streams.stop_stream(entry)

    def status(self) -> dict:
        streams = []
        for entry in self._streams.streams():
            shown = dict(entry.status)
            shown.setdefault("name", entry.config.name)
            shown.setdefault("state", "starting")
            shown.setdefault("source", entry.display)
            streams.append(shown)
        cfg = self._config
        return {"started": self._started, "streams": streams,
                "publisher": cfg.publisher.endpoint,
                "metrics": f"http://{cfg.metrics.host}:{cfg.metrics.port}/metrics" if cfg.metrics.enabled else None,
                "detectors": len(self._pipeline.detectors), "inference_actors": len(self._pipeline.inference)}

    # -- health ------------------------------------------------------------------------------
    def _health_loop(self) -> None:
        while not self._stopping.wait(HEALTH_INTERVAL_S):
            try:
                pool = check_pool(self._pipeline)
                if pool.replaced:
                    self._streams.push_pipeline()
                for name, poll in self._streams.poll().items():
                    self._check_stream(name, poll, pool.answered)
            except Exception:  # the health loop must never die; the next round tries again
                continue

    def _check_stream(self, name: str, poll: Poll, pool_answered: bool) -> None:
        """Judge one capture's answer, keep it for ``status``, and replace the actor if it needs it."""
        entry = poll.stream
        if poll.died:  # out of restarts, or killed for good: a fresh capture actor
            if self._streams.restart(name, entry.handle):
                self._pipeline.count_restart("capture")
            return
        if poll.status is None:  # no answer in time, or Ray is restarting it in place
            self._streams.set_status(entry, {**entry.status, "name": name, "state": "restarting"})
            self._record_verdict(name, "restarting", newly_stalled=False)
            return
        with self._streams.lock:
            if self._streams.get(name) is not entry:  # detached or replaced meanwhile
                return
            verdict = self._health.observe(name, poll.status, time.monotonic(), pool_answered)
            self._streams.set_status(entry, verdict.annotate(poll.status))
        self._record_verdict(name, verdict.state, verdict.newly_stalled)
        if verdict.restart and self._streams.restart(name, entry.handle):
            with self._streams.lock:
                self._health.restarted(name)
            self._pipeline.count_restart("capture")

    def _record_verdict(self, name: str, state: str, newly_stalled: bool) -> None:
        """``fervid_stream_up`` has one writer, this verdict, so /metrics and ``fervid status``
        always agree: a stream is up only while its source delivers and its frames are processed.
        (When the capture actor also wrote it, a stall whose completion thread still ran flipped
        the gauge between its 1 and this 0.)"""
        metrics = MetricsBuffer()
        metrics.set("fervid_stream_up", 1.0 if state == UP else 0.0, stream=name)
        if newly_stalled:
            metrics.inc("fervid_stream_stalls_total", stream=name)
        self._streams.record(name, metrics)

    # -- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every stream and actor, close the sockets; the caller then kills this actor."""
        self._stopping.set()
        with self._streams.lock:
            self._teardown()
            self._started = False

    def _teardown(self) -> None:
        self._streams.stop_all()
        self._pipeline.close()
