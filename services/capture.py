"""CaptureActor: one per stream; reads frames and drives each through the pipeline.

For every frame it puts the image in the object store once and submits the whole chain at
once: ``detect`` on a pool detector, ``classify`` on the inference actor (which receives only
the detection), ``publish`` (which receives the frame ref only to encode it when watched).
Ray forwards results between the actors; this actor only waits for the end of each chain.

Backpressure: at most ``max_in_flight`` frames of this stream are in the pipeline. A live
source (camera, URL, or a paced file) never waits: while the pipeline is full the newest frame
waits in a single slot, and the one it replaces is counted as dropped (stage ``capture``). An
unpaced file instead waits for room, so it is read exactly as fast as it is processed.
"""
from __future__ import annotations

import os
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
import ray

from fervid.services.config import CaptureConfig, StreamConfig
from fervid.media.frame_source import CapturedFrame, FrameSource, StreamState
from fervid.services.runtime import Telemetry
from fervid.media.sources import parse_source

GAUGE_INTERVAL_S = 0.5
FPS_WINDOW_S = 2.0
IN_FLIGHT_PER_DETECTOR = 2
"""Frames the streams may keep in the pipeline per detector: one detecting, one queued behind it."""
FAULT_KINDS = ("freeze_completer", "crash_completer")
"""What ``CaptureActor.inject_fault`` can break, for fault-injection tests."""


class InjectedFault(RuntimeError):
    """Raised by the completion thread when a test asked it to crash (``crash_completer``)."""


def in_flight_limit(configured: int | None, detectors: int, streams: int) -> int:
    """Frames of one stream allowed in the pipeline at once.

    A fixed ``configured`` value wins. Otherwise the streams share ``IN_FLIGHT_PER_DETECTOR``
    frames per detector (at least one each): enough to keep every detector busy, and no more, so
    a frame's wait behind others stays about constant as streams are added instead of growing
    with their number times a per-stream allowance.
    """
    if configured is not None:
        return configured
    budget = IN_FLIGHT_PER_DETECTOR * max(1, detectors)
    return max(1, -(-budget // max(1, streams)))  # ceiling division


@dataclass
class _InFlight:
    seq: int
    frame_ref: ray.ObjectRef
    detect_ref: ray.ObjectRef
    infer_ref: ray.ObjectRef
    detector: int
    submitted: float
    """``time.monotonic()`` at submission, for the stuck-frame watchdog."""


@ray.remote
class CaptureActor:
    KIND = "capture"

    def __init__(self, stream: StreamConfig, capture: CaptureConfig, detectors: list, inference: list,
                 publisher, metrics_actor=None, max_in_flight: int | None = None):
        self._stream = stream
        self._name = stream.name
        self._spec = parse_source(stream.source, check_exists=False)
        self._max_in_flight = max_in_flight or in_flight_limit(capture.max_in_flight, len(detectors), 1)
        self._telemetry = Telemetry(metrics_actor)
        self._restarted = self._telemetry.report_restart_if_any(self.KIND)
        self._detectors = list(detectors)
        self._inference = list(inference)
        self._publisher = publisher
        # Continue numbering after the last frame the publisher sent for this stream (zero for
        # a new stream), so after a restart subscribers see a gap, never numbers going backwards.
        try:
            first_seq = int(ray.get(publisher.last_seq.remote(self._name), timeout=10))
        except Exception:
            first_seq = 0
        self._source = FrameSource(
            self._spec, loop=stream.loop, pace=stream.pace, fps=stream.fps,
            reconnect_initial_s=capture.reconnect_initial_s, reconnect_max_s=capture.reconnect_max_s,
            open_timeout_s=capture.open_timeout_s, read_timeout_s=capture.read_timeout_s,
            first_seq=first_seq)
        self._realtime = self._spec.kind.is_live or stream.pace
        self._cond = threading.Condition()
        self._in_flight: dict[ray.ObjectRef, _InFlight] = {}
        self._waiting: CapturedFrame | None = None
        self._round_robin = zlib.crc32(self._name.encode())
        self._captured = 0
        self._processed = 0
        self._faces = 0
        self._dropped: Counter[str] = Counter()
        self._stuck_timeout_s = capture.stuck_timeout_s
        self._stuck = 0
        self._latencies: deque[float] = deque(maxlen=300)
        self._capture_times: deque[float] = deque(maxlen=512)
        self._reconnects_reported = 0
        self._last_seq = first_seq
        self._started_at = time.time()
        self._stop = threading.Event()
        self._fault: str | None = None
        self._reader = threading.Thread(target=self._read_loop, name=f"read-{self._name}", daemon=True)
        self._completer = threading.Thread(target=self._complete_loop, name=f"done-{self._name}", daemon=True)
        self._reader.start()
        self._completer.start()

    # -- reading and submitting ---------------------------------------------------------------
    def _read_loop(self) -> None:
        frames = self._source.frames(self._stop)
        while not self._stop.is_set():
            if not self._realtime:
                self._wait_for_room()  # before reading: latency counts from the read, not the queue
            frame = next(frames, None)
            if frame is None:
                break
            self._captured += 1
            self._capture_times.append(time.monotonic())
            self._telemetry.buffer.inc("fervid_frames_captured_total", stream=self._name)
            with self._cond:
                if len(self._in_flight) < self._max_in_flight:
                    self._submit(frame)
                else:
                    if self._waiting is not None:
                        self._count_drop("capture")
                    self._waiting = frame
        frames.close()
        with self._cond:
            self._cond.notify_all()

    def _wait_for_room(self) -> None:
        """Unpaced files: block until fewer than ``max_in_flight`` frames are in the pipeline."""
        with self._cond:
            while len(self._in_flight) >= self._max_in_flight and not self._stop.is_set():
                self._cond.wait(0.1)

    def _pick_detector(self) -> int:
        """The detector with the fewest of this stream's frames, rotating among equals."""
        busy = Counter(entry.detector for entry in self._in_flight.values())
        n = len(self._detectors)
        self._round_robin += 1
        order = [(self._round_robin + k) % n for k in range(n)]
        return min(order, key=lambda index: busy[index])

    def _submit(self, frame: CapturedFrame) -> None:
        """Put the frame in the object store and submit its whole chain (caller holds the lock)."""
        image: np.ndarray = frame.image
        height, width = image.shape[:2]
        meta = {"stream": self._name, "seq": frame.seq, "ts_capture": frame.ts_capture,
                "width": int(width), "height": int(height), "fps": round(self._fps(), 2)}
        frame_ref = ray.put(image)
        index = self._pick_detector()
        detect_ref = self._detectors[index].detect.remote(frame_ref)
        inference = self._inference[zlib.crc32(self._name.encode()) % len(self._inference)]
        infer_ref = inference.classify.remote(detect_ref)
        publish_ref = self._publisher.publish.remote(meta, detect_ref, infer_ref, [frame_ref])
        self._in_flight[publish_ref] = _InFlight(frame.seq, frame_ref, detect_ref, infer_ref, index, time.monotonic())
        self._last_seq = frame.seq
        self._cond.notify_all()

    # -- completing ---------------------------------------------------------------------------
    def _complete_loop(self) -> None:
        last_gauges = 0.0
        while not (self._stop.is_set() and not self._in_flight):
            self._take_injected_fault()
            now = time.monotonic()
            if now - last_gauges >= GAUGE_INTERVAL_S:
                self._update_gauges()
                last_gauges = now
            with self._cond:
                if not self._in_flight:
                    self._cond.wait(0.2)
                    continue
                refs = list(self._in_flight)
            ready, _ = ray.wait(refs, num_returns=1, timeout=0.2)
            for ref in ready:
                self._finish(ref)
            self._give_up_stuck(time.monotonic())
        self._update_gauges()

    def _take_injected_fault(self) -> None:
        """Act on a fault ``inject_fault`` asked for (called by the completion thread only)."""
        fault, self._fault = self._fault, None
        if fault == "freeze_completer":
            self._stop.wait()
        elif fault == "crash_completer":
            raise InjectedFault(f"completion thread of {self._name} crashed on request (inject_fault)")

    def _give_up_stuck(self, now: float) -> None:
        """Free the slots of frames in the pipeline for longer than ``stuck_timeout_s``.

        A result that never arrives (a task lost with an actor that died at the wrong moment)
        would otherwise hold its slot for good, and a stream whose slots are all held stops.
        The frame is counted as dropped at the first stage that had not finished.
        """
        with self._cond:
            stuck = [ref for ref, entry in self._in_flight.items() if now - entry.submitted > self._stuck_timeout_s]
        for ref in stuck:
            entry = self._in_flight[ref]
            # Its refs are simply forgotten (not cancelled: a task that does finish later is harmless).
            self._count_drop(self._pending_stage(entry))
            self._stuck += 1
            self._release_slot(ref)

    @staticmethod
    def _pending_stage(entry: _InFlight) -> str:
        for stage, ref in (("detect", entry.detect_ref), ("infer", entry.infer_ref)):
            ready, _ = ray.wait([ref], timeout=0)
            if not ready:
                return stage
        return "publish"

    def _finish(self, ref: ray.ObjectRef) -> None:
        entry = self._in_flight[ref]
        try:
            result = ray.get(ref)
        except Exception:
            self._count_drop(self._failed_stage(entry))
        else:
            if result is None:
                self._count_drop("publish")
            else:
                self._processed += 1
                self._faces += result["faces"]
                self._latencies.append(result["latency"])
        self._release_slot(ref)

    def _release_slot(self, ref: ray.ObjectRef) -> None:
        """Forget a finished (or given-up) frame and submit the waiting one, if any, in its place."""
        with self._cond:
            self._in_flight.pop(ref, None)
            if self._waiting is not None and not self._stop.is_set():
                frame, self._waiting = self._waiting, None
                self._submit(frame)
            self._cond.notify_all()

    @staticmethod
    def _failed_stage(entry: _InFlight) -> str:
        for stage, ref in (("detect", entry.detect_ref), ("infer", entry.infer_ref)):
            try:
                ray.get(ref, timeout=1)
            except Exception:
                return stage
        return "publish"

    def _count_drop(self, stage: str) -> None:
        self._dropped[stage] += 1
        self._telemetry.buffer.inc("fervid_frames_dropped_total", stream=self._name, stage=stage)

    # -- reporting ----------------------------------------------------------------------------
    def _fps(self) -> float:
        now = time.monotonic()
        recent = [t for t in self._capture_times if now - t <= FPS_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def _update_gauges(self) -> None:
        b = self._telemetry.buffer
        b.set("fervid_stream_up", 1.0 if self._source.state is StreamState.UP else 0.0, stream=self._name)
        b.set("fervid_stream_fps", self._fps(), stream=self._name)
        b.set("fervid_frames_in_flight", len(self._in_flight), stream=self._name)
        new = self._source.reconnects - self._reconnects_reported
        if new > 0:
            b.inc("fervid_reconnects_total", new, stream=self._name)
            self._reconnects_reported += new

    def status(self) -> dict:
        latencies = sorted(self._latencies)

        def quantile(q: float) -> float | None:
            return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None

        return {"name": self._name, "source": self._spec.display, "state": self._source.state.value,
                "fps": round(self._fps(), 2), "frames_captured": self._captured,
                "frames_processed": self._processed, "frames_dropped": sum(self._dropped.values()),
                "dropped_by_stage": dict(self._dropped), "faces": self._faces,
                "reconnects": self._source.reconnects, "last_error": self._source.last_error,
                "latency_ms_p50": quantile(0.5), "latency_ms_p95": quantile(0.95),
                "in_flight": len(self._in_flight), "max_in_flight": self._max_in_flight,
                "stuck_given_up": self._stuck,
                "last_seq": self._last_seq, "pid": os.getpid(),
                "restarted": self._restarted, "uptime_s": round(time.time() - self._started_at, 1)}

    def inject_fault(self, kind: str) -> None:
        """Break this actor on purpose, for fault-injection tests (like ``pid`` on other actors).

        ``"freeze_completer"``: the completion thread blocks until the actor stops, so frames
        keep being captured but none is completed (a stall the controller should notice).
        ``"crash_completer"``: the completion thread raises, as an unexpected bug would.
        The fault takes effect within the completion thread's next turn (at most ~0.2 s).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        self._fault = kind

    def set_max_in_flight(self, limit: int) -> None:
        """Change the stream's share of the pipeline (the controller rebalances as streams come and go)."""
        with self._cond:
            self._max_in_flight = max(1, int(limit))
            self._cond.notify_all()

    def set_pipeline(self, detectors: list, inference: list, publisher) -> None:
        """Use new actor handles (after the controller replaced an actor that could not restart)."""
        with self._cond:
            self._detectors, self._inference, self._publisher = list(detectors), list(inference), publisher

    def stop(self, timeout_s: float = 5.0) -> dict:
        """Stop reading, let frames in flight finish (up to ``timeout_s``), release the source."""
        self._stop.set()
        with self._cond:
            self._waiting = None
            self._cond.notify_all()
        self._reader.join(timeout=timeout_s)
        self._completer.join(timeout=timeout_s)
        self._source.close()
        self._telemetry.buffer.set("fervid_stream_up", 0.0, stream=self._name)
        self._telemetry.close()
        return self.status()
