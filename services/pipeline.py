"""The service's actors and how they are created: metrics, publisher, inference, detectors, captures.

One place decides every actor's name, lifetime and placement. Every actor is named and detached
in the ``fervid`` namespace, so a controller that Ray restarted finds its children by name
(``adopt``) instead of tearing the pipeline down (children of a non-detached owner would die with
it); an actor left over from a service killed without shutting down is removed before a new one
takes its name.
"""
from __future__ import annotations

import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from fervid.media.sources import SourceKind, parse_source
from fervid.services.capture import CaptureActor
from fervid.services.config import ServiceConfig, StreamConfig
from fervid.services.detector import DetectorActor
from fervid.services.errors import ServiceError
from fervid.services.inference import InferenceActor
from fervid.services.metrics import MetricsBuffer
from fervid.services.metrics_actor import MetricsActor
from fervid.services.placement import Plan, PlacementError, live_nodes, plan
from fervid.services.publisher import PublisherActor
from fervid.services.runtime import NAMESPACE, Telemetry, actor_name

READY_TIMEOUT_S = 180.0
RECORD_TIMEOUT_S = 5.0


def kill(handle) -> None:
    """Kill an actor for good (no restart); an actor that is already gone is fine."""
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
        kill(handle)
        time.sleep(0.2)


def _selector(selector: dict[str, str] | None) -> dict:
    """Actor options for a configured node-label selector (none: Ray's own placement)."""
    return {"label_selector": dict(selector)} if selector else {}


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


class Pipeline:
    """The shared actors every stream uses, and the factory of capture actors."""

    def __init__(self, config: ServiceConfig, node_id: str):
        self.config = config
        self._node_id = node_id
        self.metrics = self.publisher = None
        self.inference: list = []
        self.detectors: list = []
        self.telemetry: Telemetry | None = None

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
                   "max_restarts": self.config.ray.max_restarts, "max_task_retries": 0,
                   "get_if_exists": adopt, "enable_task_events": False, **resources}
        if pinned:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self._node_id, soft=False)
        return options

    def plan(self) -> Plan:
        """Inference actors, GPUs per inference actor and detector pool size for this cluster."""
        cfg = self.config
        try:
            return plan(live_nodes(ray.nodes()),
                        inference_selector=cfg.inference.label_selector, inference_actors=cfg.inference.actors,
                        gpus_per_inference=cfg.inference.num_gpus, inference_cpus=cfg.inference.num_cpus,
                        detector_selector=cfg.detector.label_selector, detector_pool=cfg.detector.pool_size,
                        detector_cpus=cfg.detector.num_cpus, capture_selector=cfg.capture.label_selector,
                        captures=len(cfg.streams), capture_cpus=cfg.capture.num_cpus)
        except PlacementError as exc:
            raise ServiceError(str(exc)) from None

    def create(self, adopt: bool = False) -> None:
        """Create (or, after a controller restart, find) the shared actors and wait until they serve."""
        cfg = self.config
        self.metrics = MetricsActor.options(**self._options("metrics", pinned=True, adopt=adopt,
                                                            num_cpus=0)).remote(
            cfg.metrics.host, cfg.metrics.port, cfg.metrics.enabled)
        # Out of order: Ray otherwise runs one caller's calls in submission order, so a frame whose
        # detection or inference never finishes would hold back every later frame of its stream.
        # The publisher keeps each stream in order itself (it drops a frame older than the last sent).
        self.publisher = PublisherActor.options(**self._options("publisher", pinned=True, adopt=adopt,
                                                                num_cpus=0, allow_out_of_order_execution=True)).remote(
            cfg.publisher.endpoint, cfg.publisher.jpeg_quality, self.metrics, curve=cfg.publisher.curve)
        for error in ray.get([self.metrics.check.remote(), self.publisher.check.remote()], timeout=60):
            if error:
                raise ServiceError(error)
        self.telemetry = Telemetry(self.metrics)
        sizes = self.plan()
        self.inference = [self._new_inference(i, sizes.gpus_per_inference, adopt)
                          for i in range(sizes.inference_actors)]
        self.detectors = [self._new_detector(i, adopt) for i in range(sizes.detectors)]
        _wait_ready([a.ready.remote() for a in self.inference] + [d.pid.remote() for d in self.detectors],
                    f"{sizes.inference_actors} inference actor(s) and {sizes.detectors} detector(s)")

    def _new_inference(self, index: int, per_gpu: float, adopt: bool = False):
        cfg = self.config.inference
        options = self._options("inference", index, adopt=adopt, num_cpus=cfg.num_cpus, num_gpus=per_gpu,
                                max_concurrency=256, **_selector(cfg.label_selector))
        return InferenceActor.options(**options).remote(str(cfg.model) if cfg.model else None, cfg.max_batch,
                                                        cfg.max_wait_ms, cfg.flip_average, self.metrics)

    def _new_detector(self, index: int, adopt: bool = False):
        d = self.config.detector
        return DetectorActor.options(**self._options(
            "detector", index, adopt=adopt, num_cpus=d.num_cpus, scheduling_strategy="SPREAD",
            allow_out_of_order_execution=True, **_selector(d.label_selector))).remote(
            d.params(), self.metrics)

    def replace(self, kind: str, index: int) -> None:
        """Kill the ``kind`` actor at ``index`` (``detector`` or ``inference``), start a new one
        under its name and count the restart; the captures need the new handles afterwards."""
        actors = self.detectors if kind == "detector" else self.inference
        kill(actors[index])
        actors[index] = (self._new_detector(index) if kind == "detector"
                         else self._new_inference(index, self.plan().gpus_per_inference))
        self.count_restart(kind)

    def new_capture(self, stream: StreamConfig, max_in_flight: int, adopt: bool = False) -> tuple[object, str]:
        """A capture actor for ``stream`` (or the running one, ``adopt``) and the source as shown
        to users (password hidden)."""
        spec = parse_source(stream.source, check_exists=False)  # validated by StreamConfig
        local = spec.kind in (SourceKind.FILE, SourceKind.DEVICE)  # the file or camera is on this node
        placement = {} if local else _selector(self.config.capture.label_selector)
        options = self._options("capture", stream.name, pinned=local, adopt=adopt,
                                num_cpus=self.config.capture.num_cpus, **placement)
        handle = CaptureActor.options(**options).remote(
            stream, self.config.capture, self.detectors, self.inference, self.publisher, self.metrics,
            max_in_flight, self.config.tracking.params(self.config.detector.min_size))
        return handle, spec.display

    def count_restart(self, kind: str) -> None:
        if self.telemetry is not None:
            self.telemetry.buffer.inc("fervid_actor_restarts_total", kind=kind)

    def record_now(self, buffer: MetricsBuffer) -> None:
        """Apply ``buffer`` on the metrics actor before returning (not in the next shipment), so a
        stream's series written here cannot reappear after ``forget_stream`` removed them."""
        batch = buffer.drain()
        if batch is None or self.metrics is None:
            return
        try:
            ray.get(self.metrics.record.remote(batch), timeout=RECORD_TIMEOUT_S)
        except Exception:  # the metrics actor may be restarting: measurements are best effort
            pass

    def forget_stream(self, name: str) -> None:
        """Remove a detached stream's state from the publisher and its series from /metrics."""
        for actor in (self.publisher, self.metrics):
            try:
                ray.get(actor.forget_stream.remote(name), timeout=10)
            except Exception:
                pass

    def close(self) -> None:
        """Close the sockets and kill every shared actor (the streams are stopped first)."""
        if self.telemetry is not None:
            self.telemetry.close()
        closes = [a.close.remote() for a in (self.publisher, self.metrics) if a is not None]
        ray.wait(closes, num_returns=len(closes), timeout=10)
        for actor in [*self.detectors, *self.inference, self.publisher, self.metrics]:
            if actor is not None:
                kill(actor)
        self.detectors, self.inference, self.publisher, self.metrics = [], [], None, None
