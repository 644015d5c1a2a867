"""Prometheus metrics: one table of series, a buffer in every actor, one endpoint.

Actors run in many processes (and machines), but Prometheus scrapes one endpoint. Each actor
therefore records into a ``MetricsBuffer`` (counters summed, histogram observations kept,
gauges overwritten) and ships it every half second in one Ray call to the metrics actor, which
owns the ``CollectorRegistry`` and serves ``/metrics``. Only plain tuples travel.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4,
                   0.5, 0.75, 1.0, 2.0, 5.0)
"""Fine between 20 and 300 ms, where real-time budgets lie, so quantiles interpolate closely."""
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class SeriesSpec:
    kind: str  # "counter" | "gauge" | "histogram"
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] | None = None


SERIES: dict[str, SeriesSpec] = {
    "fervid_frames_captured_total": SeriesSpec("counter", "Frames read from the source.", ("stream",)),
    "fervid_frames_processed_total": SeriesSpec(
        "counter", "Frames that went through detection and inference and were published.", ("stream",)),
    "fervid_frames_dropped_total": SeriesSpec(
        "counter", "Frames given up: stage=capture when the newest frame replaced a waiting one, "
                   "detect/infer/publish when that stage failed.", ("stream", "stage")),
    "fervid_frames_encoded_total": SeriesSpec(
        "counter", "Frames JPEG-encoded for subscribers (only watched streams are encoded).", ("stream",)),
    "fervid_faces_total": SeriesSpec("counter", "Faces found.", ("stream",)),
    "fervid_expressions_total": SeriesSpec("counter", "Faces by most likely expression.", ("stream", "emotion")),
    "fervid_latency_seconds": SeriesSpec("histogram", "Capture-to-publish latency of a frame.",
                                         ("stream",), LATENCY_BUCKETS),
    "fervid_stage_seconds": SeriesSpec(
        "histogram", "Time a frame spent in one stage (infer includes waiting for its batch).",
        ("stream", "stage"), STAGE_BUCKETS),
    "fervid_inference_batch_size": SeriesSpec("histogram", "Faces per model call.", (), BATCH_BUCKETS),
    "fervid_inference_batch_frames": SeriesSpec(
        "histogram", "Frames (from any streams) whose faces shared one model call.", (), BATCH_BUCKETS),
    "fervid_stream_up": SeriesSpec(
        "gauge", "1 while the source delivers frames and they are processed (the controller's verdict), else 0.",
        ("stream",)),
    "fervid_stream_fps": SeriesSpec("gauge", "Frames per second read from the source.", ("stream",)),
    "fervid_stream_watched": SeriesSpec("gauge", "1 while some monitor subscribes to the stream.", ("stream",)),
    "fervid_frames_in_flight": SeriesSpec("gauge", "Frames of the stream inside the pipeline.", ("stream",)),
    "fervid_full_scans_total": SeriesSpec("counter", "Frames whose scan plan was a full scan.", ("stream",)),
    "fervid_region_scans_total": SeriesSpec(
        "counter", "Regions scanned instead of whole frames (around tracks, or where something moved).", ("stream",)),
    "fervid_boxes_carried_total": SeriesSpec(
        "counter", "Track boxes carried through a frame without a scan (tracking.region_scan_every).", ("stream",)),
    "fervid_scanned_pixels_total": SeriesSpec(
        "counter", "Frame pixels the scan plans covered (per frame: divide by frames processed).", ("stream",)),
    "fervid_tracks_alive": SeriesSpec("gauge", "Face tracks the stream follows now.", ("stream",)),
    "fervid_tracks_started_total": SeriesSpec("counter", "Face tracks started (faces newly in view).", ("stream",)),
    "fervid_reconnects_total": SeriesSpec("counter", "Times a lost source was opened again.", ("stream",)),
    "fervid_source_open_attempts_total": SeriesSpec(
        "counter", "Times the source was tried to be opened, successfully or not.", ("stream",)),
    "fervid_actor_restarts_total": SeriesSpec("counter", "Actor processes restarted after dying.", ("kind",)),
    "fervid_stream_stalls_total": SeriesSpec(
        "counter", "Times a stream was found stalled: source up, frames arriving, none processed.", ("stream",)),
}

Key = tuple[str, tuple[tuple[str, str], ...]]


def _key(name: str, labels: dict[str, str]) -> Key:
    spec = SERIES[name]
    if set(labels) != set(spec.labels):
        raise ValueError(f"{name} takes labels {spec.labels}, got {tuple(labels)}")
    return name, tuple((label, str(labels[label])) for label in spec.labels)


class MetricsBuffer:
    """Collects one actor's measurements between shipments (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._counts: dict[Key, float] = defaultdict(float)
        self._observations: dict[Key, list[float]] = defaultdict(list)
        self._gauges: dict[Key, float] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = _key(name, labels)
        with self._lock:
            self._counts[key] += amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = _key(name, labels)
        with self._lock:
            self._observations[key].append(float(value))

    def set(self, name: str, value: float, **labels: str) -> None:
        key = _key(name, labels)
        with self._lock:
            self._gauges[key] = float(value)

    def drain(self) -> dict | None:
        """Everything recorded since the last drain, or ``None`` when nothing was."""
        with self._lock:
            if not (self._counts or self._observations or self._gauges):
                return None
            batch = {"inc": list(self._counts.items()), "observe": list(self._observations.items()),
                     "set": list(self._gauges.items())}
            self._reset()
        return batch


class MetricsRegistry:
    """The Prometheus side: applies shipped buffers to real prometheus-client series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._series = {}
        for name, spec in SERIES.items():
            metric_name = name[:-len("_total")] if spec.kind == "counter" else name
            if spec.kind == "counter":
                self._series[name] = Counter(metric_name, spec.help, spec.labels, registry=self.registry)
            elif spec.kind == "gauge":
                self._series[name] = Gauge(name, spec.help, spec.labels, registry=self.registry)
            else:
                self._series[name] = Histogram(name, spec.help, spec.labels, buckets=spec.buckets,
                                               registry=self.registry)

    def _child(self, key: Key):
        name, labels = key
        metric = self._series[name]
        return metric.labels(**dict(labels)) if labels else metric

    def apply(self, batch: dict) -> None:
        for key, amount in batch.get("inc", ()):
            self._child(key).inc(amount)
        for key, values in batch.get("observe", ()):
            child = self._child(key)
            for value in values:
                child.observe(value)
        for key, value in batch.get("set", ()):
            self._child(key).set(value)

    def forget_stream(self, stream: str) -> None:
        """Remove every series of a detached stream so dashboards stop showing it."""
        for name, spec in SERIES.items():
            if "stream" not in spec.labels:
                continue
            metric = self._series[name]
            children = {tuple(sample.labels[label] for label in spec.labels)
                        for family in metric.collect() for sample in family.samples
                        if sample.labels.get("stream") == stream}
            for labels in children:
                metric.remove(*labels)


class MetricsShipper:
    """A daemon thread that ships a buffer every ``interval_s`` through ``send``."""

    def __init__(self, buffer: MetricsBuffer, send: Callable[[dict], None], interval_s: float = 0.5):
        self.buffer = buffer
        self._send = send
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def flush(self) -> None:
        batch = self.buffer.drain()
        if batch is not None:
            try:
                self._send(batch)
            except Exception:  # the metrics actor may be restarting: measurements are best effort
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()
