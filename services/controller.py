"""Controller: the named, detached actor that owns a running service.

It creates the metrics actor, the publisher, the inference actor(s), the detector pool and one
capture actor per stream; attaches and detaches streams at run time; answers ``status``; and
watches its actors. Ray restarts a crashed actor in place (``max_restarts``); the controller's
health loop replaces any actor that died for good and points the captures at its successor.

Every child is a named, detached actor in the ``fervid`` namespace, so a controller restarted
by Ray adopts the running pipeline instead of tearing it down (children of a non-detached
owner would die with it), and the attached streams are kept in Ray's KV store for the same reason.
"""
from __future__ import annotations

import os
import json
import threading
import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from fervid.errors import FervidError
from fervid.services.capture import CaptureActor, in_flight_limit
from fervid.services.config import ServiceConfig, StreamConfig
from fervid.services.detector import DetectorActor
from fervid.services.inference import InferenceActor
from fervid.services.metrics_actor import MetricsActor
from fervid.services.placement import Plan, PlacementError, live_nodes, plan
from fervid.services.publisher import PublisherActor
from fervid.services.runtime import NAMESPACE, Telemetry, actor_name, was_restarted
from fervid.media.sources import SourceKind, parse_source

HEALTH_INTERVAL_S = 1.0
READY_TIMEOUT_S = 180.0
KV_STREAMS_KEY = b"fervid:streams"


class ServiceError(FervidError):
    """The service cannot do what was asked (unknown stream, duplicate name, busy port...)."""


def _kill(handle) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception:
        pass


def _remove_leftover(name: str, timeout_s: float = 10.0) -> None:
    """Kill a detached actor of this name, if any, and wait until its name is free."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return
        _kill(handle)
        time.sleep(0.2)


def _selector(selector: dict[str, str] | None) -> dict:
    """Actor options for a configured node-label selector (none: Ray's own placement)."""
    return {"label_selector": dict(selector)} if selector else {}


@ray.remote
class Controller:
    KIND = "controller"

    def __init__(self, config: ServiceConfig, node_id: str):
        self._config = config
        self._node_id = node_id
        self._lock = threading.RLock()
        self._streams: dict[str, dict] = {}
        self._statuses: dict[str, dict] = {}
        self._metrics = self._publisher = None
        self._inference: list = []
        self._detectors: list = []
        self._telemetry: Telemetry | None = None
        self._started = False
        self._stopping = threading.Event()
        self._health = threading.Thread(target=self._health_loop, name="health", daemon=True)
        if was_restarted():
            # Ray restarted us after a crash: adopt the running actors and the attached streams.
            threading.Thread(target=self._recover, name="recover", daemon=True).start()

    def pid(self) -> int:
        """The actor's process id (for operators and fault-injection tests)."""
        return os.getpid()

    # -- start-up ----------------------------------------------------------------------------
    def _options(self, kind: str, key: str | int = "", pinned: bool = False, adopt: bool = False,
                 **resources) -> dict:
        """Actor options; ``adopt`` reuses a running actor of that name, otherwise a leftover
        one (from a service that was killed without shutting down) is removed first."""
        name = actor_name(kind, key)
        if not adopt:
            _remove_leftover(name)
        # No task events: every frame is three actor calls (detect, classify, publish) plus metrics
        # and health calls, and Ray's GCS keeps an event record (~3.4 KB) for each of up to 100,000
        # tasks, so with them on the GCS grew by ~0.2 MiB/s on 4 streams until that cap (~340 MB).
        # Actor lifecycle (creation, death, restarts) is still in Ray's actor table.
        options = {"name": name, "namespace": NAMESPACE, "lifetime": "detached",
                   "max_restarts": self._config.ray.max_restarts, "max_task_retries": 0,
                   "get_if_exists": adopt, "enable_task_events": False, **resources}
        if pinned:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self._node_id, soft=False)
        return options

    def _plan(self) -> Plan:
        """Inference actors, GPUs per inference actor and detector pool size for this cluster."""
        cfg = self._config
        try:
            return plan(live_nodes(ray.nodes()),
                        inference_selector=cfg.inference.label_selector, inference_actors=cfg.inference.actors,
                        gpus_per_inference=cfg.inference.num_gpus, inference_cpus=cfg.inference.num_cpus,
                        detector_selector=cfg.detector.label_selector, detector_pool=cfg.detector.pool_size,
                        detector_cpus=cfg.detector.num_cpus, capture_selector=cfg.capture.label_selector,
                        captures=len(cfg.streams), capture_cpus=cfg.capture.num_cpus)
        except PlacementError as exc:
            raise ServiceError(str(exc)) from None

    def start(self) -> dict:
        """Create the pipeline and the configured streams; raise ``ServiceError`` if it cannot run."""
        with self._lock:
            if self._started:
                return self.status()
            try:
                self._create_pipeline()
                for stream in self._config.streams:
                    self._attach_locked(stream)
            except BaseException:
                self._teardown()
                raise
            self._started = True
            self._save_streams()
            self._rebalance()
        self._health.start()
        return self.status()

    def _create_pipeline(self, adopt: bool = False) -> None:
        cfg = self._config
        self._metrics = MetricsActor.options(**self._options("metrics", pinned=True, adopt=adopt,
                                                             num_cpus=0)).remote(
            cfg.metrics.host, cfg.metrics.port, cfg.metrics.enabled)
        # Out of order: Ray otherwise runs one caller's calls in submission order, so a frame whose
        # detection or inference never finishes would hold back every later frame of its stream.
        # The publisher keeps each stream in order itself (it drops a frame older than the last sent).
        self._publisher = PublisherActor.options(**self._options("publisher", pinned=True, adopt=adopt,
                                                                 num_cpus=0, allow_out_of_order_execution=True)).remote(
            cfg.publisher.endpoint, cfg.publisher.jpeg_quality, self._metrics, curve=cfg.publisher.curve)
        for error in ray.get([self._metrics.check.remote(), self._publisher.check.remote()], timeout=60):
            if error:
                raise ServiceError(error)
        self._telemetry = Telemetry(self._metrics)
        sizes = self._plan()
        self._inference = [self._new_inference(i, sizes.gpus_per_inference, adopt)
                           for i in range(sizes.inference_actors)]
        self._detectors = [self._new_detector(i, adopt) for i in range(sizes.detectors)]
        self._wait_ready([a.ready.remote() for a in self._inference] + [d.pid.remote() for d in self._detectors],
                         f"{sizes.inference_actors} inference actor(s) and {sizes.detectors} detector(s)")

    def _new_inference(self, index: int, per_gpu: float, adopt: bool = False):
        cfg = self._config.inference
        options = self._options("inference", index, adopt=adopt, num_cpus=cfg.num_cpus, num_gpus=per_gpu,
                                max_concurrency=256, **_selector(cfg.label_selector))
        return InferenceActor.options(**options).remote(str(cfg.model) if cfg.model else None, cfg.max_batch,
                                                        cfg.max_wait_ms, cfg.flip_average, self._metrics)

    def _new_detector(self, index: int, adopt: bool = False):
        d = self._config.detector
        return DetectorActor.options(**self._options(
            "detector", index, adopt=adopt, num_cpus=d.num_cpus, scheduling_strategy="SPREAD",
            allow_out_of_order_execution=True, **_selector(d.label_selector))).remote(
            d.params(), self._metrics)

    def _new_capture(self, stream: StreamConfig, adopt: bool = False) -> dict:
        spec = parse_source(stream.source, check_exists=False)  # validated by StreamConfig
        local = spec.kind in (SourceKind.FILE, SourceKind.DEVICE)  # the file or camera is on this node
        placement = {} if local else _selector(self._config.capture.label_selector)
        options = self._options("capture", stream.name, pinned=local, adopt=adopt,
                                num_cpus=self._config.capture.num_cpus, **placement)
        handle = CaptureActor.options(**options).remote(
            stream, self._config.capture, self._detectors, self._inference, self._publisher, self._metrics,
            self._in_flight_limit(self._live_streams() + 1))
        return {"config": stream, "handle": handle, "display": spec.display}

    def _in_flight_limit(self, streams: int | None = None) -> int:
        """Each stream's share of the pipeline. Streams whose source is down use no slots, so
        they are not counted: dead cameras must not shrink the share of the live ones (the
        health loop re-pushes the share when a stream goes down or comes back)."""
        if streams is None:
            streams = self._live_streams()
        return in_flight_limit(self._config.capture.max_in_flight, len(self._detectors), streams)

    def _live_streams(self) -> int:
        """Attached streams whose source is not known to be down (new ones count as live)."""
        return sum(1 for name in self._streams if self._statuses.get(name, {}).get("state") != "down")

    def _rebalance(self) -> None:
        """Give every capture its share of the pipeline after streams were added or removed."""
        limit = self._in_flight_limit()
        for entry in self._streams.values():
            entry["handle"].set_max_in_flight.remote(limit)

    @staticmethod
    def _wait_ready(refs: list, what: str) -> None:
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=READY_TIMEOUT_S)
        if pending:
            raise ServiceError(f"{what} did not start within {READY_TIMEOUT_S:.0f} s "
                               "(not enough CPUs/GPUs in the cluster for the configured actors?)")
        for ref in ready:
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                cause = getattr(exc, "cause", None) or exc
                first = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
                raise ServiceError(f"{what} failed to start: {first[:300]}") from None

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
        with self._lock:
            if not self._started:
                raise ServiceError("the service is not started")
            self._attach_locked(stream)
            self._save_streams()
            self._rebalance()
        return {"name": stream.name, "source": self._streams[stream.name]["display"]}

    def _attach_locked(self, stream: StreamConfig) -> None:
        if stream.name in self._streams:
            raise ServiceError(f"a stream named {stream.name!r} is already attached")
        self._streams[stream.name] = self._new_capture(stream)

    def detach(self, name: str) -> dict:
        with self._lock:
            entry = self._streams.pop(name, None)
            if entry is None:
                raise ServiceError(f"no stream named {name!r} (attached: {', '.join(sorted(self._streams)) or 'none'})")
            self._statuses.pop(name, None)
            self._save_streams()
            self._rebalance()
        final: dict = {"name": name}
        try:
            final = ray.get(entry["handle"].stop.remote(), timeout=15)
        except Exception:
            pass
        _kill(entry["handle"])
        for actor in (self._publisher, self._metrics):
            try:
                ray.get(actor.forget_stream.remote(name), timeout=10)
            except Exception:
                pass
        return final

    def _save_streams(self) -> None:
        from ray.experimental import internal_kv

        document = [entry["config"].model_dump(mode="json") for entry in self._streams.values()]
        internal_kv._internal_kv_put(KV_STREAMS_KEY, json.dumps(document).encode(), overwrite=True,
                                     namespace=NAMESPACE)

    def _recover(self) -> None:
        from ray.experimental import internal_kv

        with self._lock:
            self._create_pipeline(adopt=True)
            raw = internal_kv._internal_kv_get(KV_STREAMS_KEY, namespace=NAMESPACE)
            for item in json.loads(raw) if raw else []:
                # Validated when it was attached; its file may be missing right now (a source down).
                stream = StreamConfig.model_construct(**item)
                self._streams[stream.name] = self._new_capture(stream, adopt=True)
            self._rebalance()
            self._started = True
            self._telemetry.buffer.inc("fervid_actor_restarts_total", kind=self.KIND)
        self._health.start()

    # -- health ------------------------------------------------------------------------------
    def _health_loop(self) -> None:
        while not self._stopping.wait(HEALTH_INTERVAL_S):
            try:
                self._check_pool()
                self._poll_streams()
            except Exception:  # the health loop must never die; the next round tries again
                continue

    def _poll_streams(self) -> None:
        with self._lock:
            entries = dict(self._streams)
        refs = {name: entry["handle"].status.remote() for name, entry in entries.items()}
        expected = self._in_flight_limit()
        for name, ref in refs.items():
            try:
                self._statuses[name] = status = ray.get(ref, timeout=3)
                if status.get("max_in_flight") not in (None, expected):  # restarted with an old share
                    entries[name]["handle"].set_max_in_flight.remote(expected)
            except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                self._statuses.setdefault(name, {"name": name})["state"] = "restarting"
            except ray.exceptions.ActorDiedError:
                with self._lock:
                    entry = self._streams.get(name)
                    if entry is None or entry["handle"] is not entries[name]["handle"]:
                        continue
                    # Out of restarts (or killed for good): start a fresh capture actor.
                    _kill(entry["handle"])
                    del self._streams[name]
                    self._attach_locked(entry["config"])
                self._count_restart("capture")

    def _check_pool(self) -> None:
        replaced = False
        for kind, actors, probe in (("detector", self._detectors, "pid"), ("inference", self._inference, "ready")):
            for index, actor in enumerate(list(actors)):
                try:
                    ray.get(getattr(actor, probe).remote(), timeout=5)
                except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                    continue  # busy, or Ray is restarting it in place
                except ray.exceptions.ActorDiedError:
                    _kill(actor)
                    actors[index] = (self._new_detector(index) if kind == "detector"
                                     else self._new_inference(index, self._plan().gpus_per_inference))
                    self._count_restart(kind)
                    replaced = True
        if replaced:
            with self._lock:
                for entry in self._streams.values():
                    entry["handle"].set_pipeline.remote(self._detectors, self._inference, self._publisher)

    def _count_restart(self, kind: str) -> None:
        if self._telemetry is not None:
            self._telemetry.buffer.inc("fervid_actor_restarts_total", kind=kind)

    def status(self) -> dict:
        with self._lock:
            names = list(self._streams)
        streams = []
        for name in names:
            status = dict(self._statuses.get(name) or {})
            status.setdefault("name", name)
            status.setdefault("state", "starting")
            entry = self._streams.get(name)
            status.setdefault("source", entry["display"] if entry else "")
            streams.append(status)
        cfg = self._config
        return {"started": self._started, "streams": streams,
                "publisher": cfg.publisher.endpoint,
                "metrics": f"http://{cfg.metrics.host}:{cfg.metrics.port}/metrics" if cfg.metrics.enabled else None,
                "detectors": len(self._detectors), "inference_actors": len(self._inference)}

    # -- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every stream and actor, close the sockets; the caller then kills this actor."""
        self._stopping.set()
        with self._lock:
            self._teardown()
            self._started = False

    def _teardown(self) -> None:
        stops = [entry["handle"].stop.remote() for entry in self._streams.values()]
        ray.wait(stops, num_returns=len(stops), timeout=15)
        for entry in self._streams.values():
            _kill(entry["handle"])
        self._streams.clear()
        if self._telemetry is not None:
            self._telemetry.close()
        closes = [a.close.remote() for a in (self._publisher, self._metrics) if a is not None]
        ray.wait(closes, num_returns=len(closes), timeout=10)
        for actor in [*self._detectors, *self._inference, self._publisher, self._metrics]:
            if actor is not None:
                _kill(actor)
        self._detectors, self._inference, self._publisher, self._metrics = [], [], None, None
        try:
            from ray.experimental import internal_kv

            internal_kv._internal_kv_del(KV_STREAMS_KEY, namespace=NAMESPACE)
        except Exception:
            pass
