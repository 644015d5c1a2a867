"""The attached streams: their settings, capture actors and last status, kept in Ray's KV store.

A controller that Ray restarted after a crash must carry on with the same streams. Capture actors
are detached and named, so they outlive the controller; their settings are written to the GCS
key-value store on every attach and detach (``StreamStore``), and a restarted controller reads
them back and adopts the running capture actors by name (``adopt_saved``).

The registry also gives each stream its share of the pipeline: streams whose source is down use
no slots, so they are not counted, and the shares are pushed again whenever that changes.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import ray

from fervid.services.capture import in_flight_limit
from fervid.services.config import StreamConfig
from fervid.services.errors import ServiceError
from fervid.services.metrics import MetricsBuffer
from fervid.services.pipeline import Pipeline, kill
from fervid.services.runtime import NAMESPACE

KV_STREAMS_KEY = b"fervid:streams"
STATUS_TIMEOUT_S = 3.0
"""A capture actor that does not answer ``status`` within this is shown ``restarting``."""


class StreamStore:
    """The attached streams' settings in Ray's GCS key-value store.

    ``ray.experimental.internal_kv`` (its functions carry an underscore) is the only key-value
    store in Ray 2.60's Python API, and nothing public replaces it for this: the store lives in
    the GCS, so it outlives every actor, the controller included, which is what it is for (Tune's
    registry keeps its state there the same way). An actor holding the list would be restarted by
    Ray with its constructor arguments, an empty list; ``ray.util.list_named_actors`` finds the
    capture actors but not their settings; ``ray.util.state`` lists actors through the dashboard,
    which fervid does not start. This class is the only user, so a replacement changes one place.
    """

    def __init__(self, key: bytes = KV_STREAMS_KEY):
        self._key = key

    def save(self, streams: list[StreamConfig]) -> None:
        from ray.experimental import internal_kv

        document = [stream.model_dump(mode="json") for stream in streams]
        internal_kv._internal_kv_put(self._key, json.dumps(document).encode(), overwrite=True, namespace=NAMESPACE)

    def load(self) -> list[StreamConfig]:
        from ray.experimental import internal_kv

        raw = internal_kv._internal_kv_get(self._key, namespace=NAMESPACE)
        # Validated when they were attached; a file may be missing right now (a source that is down).
        return [StreamConfig.model_construct(**item) for item in (json.loads(raw) if raw else [])]

    def delete(self) -> None:
        from ray.experimental import internal_kv

        internal_kv._internal_kv_del(self._key, namespace=NAMESPACE)


@dataclass
class AttachedStream:
    config: StreamConfig
    handle: object
    """The stream's capture actor."""
    display: str
    """The source as users see it (password hidden)."""
    status: dict = field(default_factory=dict)
    """The last status the health loop recorded (what ``fervid status`` shows)."""


@dataclass(frozen=True)
class Poll:
    """One stream's answer to a health-loop ``status`` call."""

    stream: AttachedStream
    status: dict | None
    """None: no answer in time, or Ray is restarting the actor."""
    died: bool = False
    """The actor is gone for good (out of restarts, or killed)."""


class StreamRegistry:
    """Attached streams by name; every change is saved to ``StreamStore`` by the caller's request."""

    def __init__(self, pipeline: Pipeline, store: StreamStore | None = None):
        self._pipeline = pipeline
        self._store = store or StreamStore()
        self.lock = threading.RLock()
        """Held across a change of the attached streams (attach, detach, restart, recovery)."""
        self._streams: dict[str, AttachedStream] = {}
        self._metrics_lock = threading.Lock()
        """Orders a stream's series written by ``record`` before their removal on detach."""

    # -- what is attached ----------------------------------------------------------------------
    def names(self) -> list[str]:
        with self.lock:
            return list(self._streams)

    def get(self, name: str) -> AttachedStream | None:
        with self.lock:
            return self._streams.get(name)

    def streams(self) -> list[AttachedStream]:
        with self.lock:
            return list(self._streams.values())

    # -- changes -------------------------------------------------------------------------------
    def add(self, stream: StreamConfig, adopt: bool = False) -> AttachedStream:
        """Start a capture actor for ``stream`` (or adopt the running one); the caller saves and
        rebalances once its changes are done."""
        with self.lock:
            if stream.name in self._streams:
                raise ServiceError(f"a stream named {stream.name!r} is already attached")
            handle, display = self._pipeline.new_capture(stream, self.in_flight_limit(self._live() + 1), adopt)
            self._streams[stream.name] = entry = AttachedStream(stream, handle, display)
            return entry

    def remove(self, name: str) -> AttachedStream:
        """Forget ``name`` (its actor still runs: see ``stop_stream``); saved and rebalanced."""
        with self.lock:
            entry = self._streams.pop(name, None)
            if entry is None:
                attached = ", ".join(sorted(self._streams)) or "none"
                raise ServiceError(f"no stream named {name!r} (attached: {attached})")
            self.save()
            self.rebalance()
            return entry

    def stop_stream(self, entry: AttachedStream) -> dict:
        """Stop a removed stream's capture actor and remove its series; its final status."""
        final: dict = {"name": entry.config.name}
        try:
            final = ray.get(entry.handle.stop.remote(), timeout=15)
        except Exception:
            pass
        kill(entry.handle)
        with self._metrics_lock:
            self._pipeline.forget_stream(entry.config.name)
        return final

    def restart(self, name: str, handle) -> bool:
        """Replace ``name``'s capture actor ``handle`` by a fresh one with the same settings;
        False when the stream was detached or its actor replaced meanwhile."""
        with self.lock:
            entry = self._streams.get(name)
            if entry is None or entry.handle is not handle:
                return False
            kill(handle)
            del self._streams[name]
            self.add(entry.config)
            return True

    def adopt_saved(self) -> None:
        """After a controller restart: the saved streams, with their running capture actors."""
        with self.lock:
            for stream in self._store.load():
                self.add(stream, adopt=True)
            self.rebalance()

    def save(self) -> None:
        with self.lock:
            self._store.save([entry.config for entry in self._streams.values()])

    def stop_all(self) -> None:
        """Stop and kill every capture actor, forget every stream and the saved list."""
        with self.lock:
            stops = [entry.handle.stop.remote() for entry in self._streams.values()]
            ray.wait(stops, num_returns=len(stops), timeout=15)
            for entry in self._streams.values():
                kill(entry.handle)
            self._streams.clear()
            try:
                self._store.delete()
            except Exception:
                pass

    # -- shares of the pipeline ----------------------------------------------------------------
    def _live(self) -> int:
        """Attached streams whose source is not known to be down (new ones count as live)."""
        return sum(1 for entry in self._streams.values() if entry.status.get("state") != "down")

    def in_flight_limit(self, streams: int | None = None) -> int:
        """Each stream's share of the pipeline. Streams whose source is down use no slots, so
        they are not counted: dead cameras must not shrink the share of the live ones (the
        health loop re-pushes the share when a stream goes down or comes back)."""
        with self.lock:
            live = self._live() if streams is None else streams
            return in_flight_limit(self._pipeline.config.capture.max_in_flight, len(self._pipeline.detectors), live)

    def rebalance(self) -> None:
        """Give every capture its share of the pipeline after streams were added or removed."""
        with self.lock:
            limit = self.in_flight_limit()
            for entry in self._streams.values():
                entry.handle.set_max_in_flight.remote(limit)

    def push_pipeline(self) -> None:
        """Send every capture the current detector, inference and publisher handles."""
        p = self._pipeline
        with self.lock:
            for entry in self._streams.values():
                entry.handle.set_pipeline.remote(p.detectors, p.inference, p.publisher)

    # -- health ----------------------------------------------------------------------------------
    def poll(self) -> dict[str, Poll]:
        """Ask every capture for its status at once (``STATUS_TIMEOUT_S`` in all); re-push the
        share of one that runs with an old one (restarted by Ray with its first share)."""
        entries = self.streams()
        expected = self.in_flight_limit()
        refs = [(entry, entry.handle.status.remote()) for entry in entries]
        deadline = time.monotonic() + STATUS_TIMEOUT_S
        polls: dict[str, Poll] = {}
        for entry, ref in refs:
            name = entry.config.name
            try:
                status = ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                polls[name] = Poll(entry, None)
            except ray.exceptions.ActorDiedError:
                polls[name] = Poll(entry, None, died=True)
            else:
                polls[name] = Poll(entry, status)
                if status.get("max_in_flight") not in (None, expected):
                    entry.handle.set_max_in_flight.remote(expected)
        return polls

    def set_status(self, entry: AttachedStream, status: dict) -> None:
        """Record what ``fervid status`` shows for ``entry``, unless it was replaced meanwhile."""
        with self.lock:
            if self._streams.get(entry.config.name) is entry:
                entry.status = status

    def record(self, name: str, buffer: MetricsBuffer) -> None:
        """Write ``buffer`` (series of stream ``name``) to /metrics now, if ``name`` is still
        attached: never after ``stop_stream`` removed its series."""
        with self._metrics_lock:
            if self.get(name) is not None:
                self._pipeline.record_now(buffer)
