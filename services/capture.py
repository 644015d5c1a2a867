"""CaptureActor: one per stream; reads frames and drives each through the pipeline.

The stream's face tracks live here (``StreamTracking``). For every frame the actor makes the
frame's scan plan from them (a full scan now and then, otherwise regions around the tracks and
where something moved), puts the image in the object store once and submits ``detect`` with the
plan on a pool detector (boxes and crops) and ``classify`` on the inference actor (which receives
only the detection and returns the classified ``Faces``); Ray forwards the detection between them.
When a frame's faces come back, and every frame launched before it has come back too
(``InOrder``: frames finish out of order, tracks need them in order), the actor matches them to
its tracks, smooths their expressions and submits ``publish`` with the tracked faces and, when
somebody watches the stream, the JPEG it encoded itself (the publisher never reads a frame).

Backpressure: at most ``max_in_flight`` frames of this stream are in the pipeline. A live
source (camera, URL, or a paced file) never waits: while the pipeline is full the newest frame
waits in a single slot, and the one it replaces is counted as dropped (stage ``capture``). An
unpaced file instead waits for room, so it is read exactly as fast as it is processed.

Two threads share the stream's bookkeeping (``StreamBook``, one lock): the reader and the
completer. Either dying of an unexpected exception ends the process, so Ray restarts the actor
in place (a silently dead completer once left a stream "up" that processed nothing). This actor
owns the stream's counts and records its per-frame metrics: it sees every outcome.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import ray

from fervid.media.frame_source import FrameSource
from fervid.media.sources import parse_source
from fervid.models.scan_plan import ScanPlan
from fervid.models.stream_tracking import StreamTracking, TrackingParams
from fervid.services.config import CaptureConfig, StreamConfig
from fervid.services.frame_order import InOrder
from fervid.services.frame_slots import Slot, StreamBook
from fervid.services.runtime import Telemetry

log = logging.getLogger(__name__)

GAUGE_INTERVAL_S = 0.5
IN_FLIGHT_PER_DETECTOR = 2
"""Frames the streams may keep in the pipeline per detector: one detecting, one queued behind it."""
DEFAULT_JPEG_QUALITY = 80
"""Used only when the publisher cannot be asked for ``publisher.jpeg_quality`` at start-up."""
FAULT_KINDS = ("freeze_completer", "crash_completer")
"""What ``CaptureActor.inject_fault`` can break, for fault-injection tests."""
FLUSH_BEFORE_EXIT_S = 2.0
"""How long a dying capture waits for its last metrics to reach the metrics actor."""


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
class _Chain:
    """A launched frame: what the completer needs to track, publish and finish it."""

    ts_capture: float
    ts_stream: float
    """The frame's time on the stream's own clock (``CapturedFrame.ts``): what tracking runs on."""
    plan: ScanPlan
    meta: dict
    jpeg: bytes
    detect_ref: ray.ObjectRef
    infer_ref: ray.ObjectRef
    classification: object = None
    """The inference result, once it is in (kept for the publish step and the metrics)."""
    publish_ref: ray.ObjectRef | None = None
    """Set when the tracked faces were sent to the publisher (frames go in launch order)."""

    @property
    def awaited(self) -> ray.ObjectRef | None:
        """The ref whose completion moves this frame on (``None``: it waits for older frames)."""
        if self.publish_ref is not None:
            return self.publish_ref
        return self.infer_ref if self.classification is None else None


@ray.remote
class CaptureActor:
    KIND = "capture"

    def __init__(self, stream: StreamConfig, capture: CaptureConfig, detectors: list, inference: list,
                 publisher, metrics_actor=None, max_in_flight: int | None = None,
                 tracking: TrackingParams | None = None):
        self._stream = stream
        self._name = stream.name
        self._spec = parse_source(stream.source, check_exists=False)
        self._telemetry = Telemetry(metrics_actor)
        self._restarted = self._telemetry.report_restart_if_any(self.KIND)
        # Continue numbering after the last frame the publisher sent for this stream (zero for
        # a new stream), so after a restart subscribers see a gap, never numbers going backwards.
        try:
            first_seq, quality, watched = ray.get([publisher.last_seq.remote(self._name),
                                                   publisher.jpeg_quality.remote(),
                                                   publisher.is_watched.remote(self._name)], timeout=10)
        except Exception:
            first_seq, quality, watched = 0, DEFAULT_JPEG_QUALITY, False
        self._jpeg_params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
        self._source = FrameSource(
            self._spec, loop=stream.loop, pace=stream.pace, fps=stream.fps,
            reconnect_initial_s=capture.reconnect_initial_s, reconnect_max_s=capture.reconnect_max_s,
            open_timeout_s=capture.open_timeout_s, read_timeout_s=capture.read_timeout_s,
            first_seq=int(first_seq))
        self._realtime = self._spec.kind.is_live or stream.pace
        self._book: StreamBook[_Chain] = StreamBook(
            max_in_flight or in_flight_limit(capture.max_in_flight, len(detectors), 1), len(detectors),
            capture.stuck_timeout_s, first_seq=int(first_seq), rotation=zlib.crc32(self._name.encode()))
        # Submissions (admitting a frame and sending its chain) happen under this lock, from the
        # reader or the completer, so chains leave in the order their frames were admitted.
        self._submitting = threading.Lock()
        self._tracking = StreamTracking(tracking or TrackingParams(enabled=False))
        self._order: InOrder[_Chain] = InOrder()
        self._detectors, self._inference, self._publisher = list(detectors), list(inference), publisher
        self._watched = threading.Event()
        """Set while the publisher reports a subscriber for this stream: frames are JPEG-encoded then."""
        if watched:
            self._watched.set()
        self._watched_as_of = 0.0
        """``ts_publish`` of the publish result that last set ``_watched`` (completer thread only)."""
        self._faults: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reported = {"reconnects": 0, "open_attempts": 0, "tracks_started": 0}
        self._started_at = time.time()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._guarded(self._read_loop, "reader"),
                                        name=f"read-{self._name}", daemon=True)
        self._completer = threading.Thread(target=self._guarded(self._complete_loop, "completer"),
                                           name=f"done-{self._name}", daemon=True)
        self._reader.start()
        self._completer.start()

    def _guarded(self, loop: Callable[[], None], role: str) -> Callable[[], None]:
        """``loop``, ending the process if it raises while the actor runs.

        Without its reader the stream reads nothing; without its completer no slot is ever freed;
        either way it would look alive. An exiting process is what Ray restarts in place
        (``ray.actor.exit_actor`` would be an intended exit, never restarted), and the restarted
        actor counts itself in ``fervid_actor_restarts_total{kind="capture"}``.
        """
        def run() -> None:
            try:
                loop()
            except BaseException:
                if self._stop.is_set():  # stopping: the actor is going away anyway
                    log.warning("capture %s: %s thread failed while stopping", self._name, role, exc_info=True)
                    return
                log.critical("capture %s: %s thread died; exiting so that Ray restarts this actor",
                             self._name, role, exc_info=True)
                try:
                    self._telemetry.close(wait_s=FLUSH_BEFORE_EXIT_S)
                finally:
                    sys.stderr.flush()
                    os._exit(1)

        return run

    # -- reading and submitting ---------------------------------------------------------------
    def _read_loop(self) -> None:
        frames = self._source.frames(self._stop)
        try:
            while not self._stop.is_set():
                if not self._realtime:
                    self._book.wait_for_room(self._stop)  # before reading: latency counts from the read
                frame = next(frames, None)
                if frame is None:
                    break
                self._telemetry.buffer.inc("fervid_frames_captured_total", stream=self._name)
                with self._submitting:
                    offered = self._book.offer(frame)
                    for slot in offered.slots:
                        self._launch(slot)
                self._count_drops("capture", offered.dropped)
        finally:
            frames.close()

    def _launch(self, slot: Slot) -> None:
        """Put the frame in the object store and submit its chain (caller holds ``_submitting``)."""
        frame = slot.frame
        image: np.ndarray = frame.image
        height, width = image.shape[:2]
        meta = {"stream": self._name, "seq": frame.seq, "ts_capture": frame.ts_capture,
                "width": int(width), "height": int(height), "fps": round(self._book.fps(), 2)}
        plan = self._tracking.plan(frame.ts, image)
        frame_ref = ray.put(image)
        detect_ref = self._detectors[slot.detector].detect.remote(frame_ref, plan)
        inference = self._inference[zlib.crc32(self._name.encode()) % len(self._inference)]
        infer_ref = inference.classify.remote(detect_ref)
        self._count_plan(plan, int(width), int(height))
        jpeg = self._encode(image) if self._watched.is_set() else b""  # while the frame is detected
        self._order.launched(slot.id)
        self._book.launched(slot, _Chain(frame.ts_capture, frame.ts, plan, meta, jpeg, detect_ref, infer_ref))

    def _count_plan(self, plan: ScanPlan, width: int, height: int) -> None:
        b = self._telemetry.buffer
        if plan.full:
            b.inc("fervid_full_scans_total", stream=self._name)
        elif len(plan):
            b.inc("fervid_region_scans_total", len(plan), stream=self._name)
        if len(plan.carried):
            b.inc("fervid_boxes_carried_total", len(plan.carried), stream=self._name)
        b.inc("fervid_scanned_pixels_total", plan.pixels(width, height), stream=self._name)

    def _encode(self, image: np.ndarray) -> bytes:
        ok, encoded = cv2.imencode(".jpg", image, self._jpeg_params)
        if not ok:
            return b""
        self._telemetry.buffer.inc("fervid_frames_encoded_total", stream=self._name)
        return encoded.tobytes()

    def _submit_waiting(self) -> None:
        with self._submitting:
            slot = self._book.take_waiting()
            if slot is not None:
                self._launch(slot)

    # -- completing ---------------------------------------------------------------------------
    def _complete_loop(self) -> None:
        last_gauges = 0.0
        while not (self._stop.is_set() and self._book.in_flight == 0):
            self._take_injected_fault()
            now = time.monotonic()
            if now - last_gauges >= GAUGE_INTERVAL_S:
                self._update_gauges()
                last_gauges = now
            pending = self._book.pending()
            if not pending:
                self._book.wait_for_pending(0.2)
                continue
            by_ref = {chain.awaited: slot_id for slot_id, chain in pending.items() if chain.awaited is not None}
            ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=0.2) if by_ref else ([], [])
            for ref in ready:
                slot_id = by_ref[ref]
                chain = pending[slot_id]
                if chain.publish_ref is not None and ref == chain.publish_ref:
                    self._finish(slot_id, chain)
                else:
                    self._classified(slot_id, chain)
            self._give_up_stuck()
            self._submit_waiting()
        self._update_gauges()

    def _classified(self, slot_id: int, chain: _Chain) -> None:
        """A frame's faces are in: keep them, then track and publish every frame now in order."""
        try:
            chain.classification = ray.get(chain.infer_ref)
        except Exception:
            self._drop(slot_id, self._failed_stage(chain))
            return
        self._publish_due(self._order.finish(slot_id, chain))

    def _publish_due(self, due: list[tuple[int, _Chain]]) -> None:
        """Match each frame's faces to the tracks, in launch order, and send it to the publisher."""
        for _, chain in due:
            classification = chain.classification
            tracked = self._tracking.apply(chain.ts_stream, chain.plan, classification.faces)
            started = self._tracking.counts.tracks_started - self._reported["tracks_started"]
            if started:
                self._telemetry.buffer.inc("fervid_tracks_started_total", started, stream=self._name)
                self._reported["tracks_started"] += started
            chain.classification = replace(classification, faces=tracked)
            chain.publish_ref = self._publisher.publish.remote(chain.meta, chain.classification, chain.jpeg)
            chain.jpeg = b""

    def _take_injected_fault(self) -> None:
        """Act on a fault ``inject_fault`` asked for (called by the completion thread only)."""
        try:
            fault = self._faults.get_nowait()
        except queue.Empty:
            return
        if fault == "freeze_completer":
            self._stop.wait()
        elif fault == "crash_completer":
            raise InjectedFault(f"completion thread of {self._name} crashed on request (inject_fault)")

    def _finish(self, slot_id: int, chain: _Chain) -> None:
        try:
            published = ray.get(chain.publish_ref)
        except Exception:
            self._drop(slot_id, "publish")
            return
        classification = chain.classification
        # Results complete out of order: only the most recent publish says who watches now.
        if published.ts_publish >= self._watched_as_of:
            self._watched_as_of = published.ts_publish
            if published.watched:
                self._watched.set()
            else:
                self._watched.clear()
        if not published.sent:
            self._drop(slot_id, "publish")  # older than a frame already sent
            return
        faces = classification.faces
        latency = published.ts_publish - chain.ts_capture
        if not self._book.processed(slot_id, len(faces), latency):
            return  # given up as stuck meanwhile: already counted
        b = self._telemetry.buffer
        b.inc("fervid_frames_processed_total", stream=self._name)
        if len(faces):
            b.inc("fervid_faces_total", len(faces), stream=self._name)
        for emotion in faces.emotions:
            b.inc("fervid_expressions_total", stream=self._name, emotion=emotion)
        b.observe("fervid_latency_seconds", latency, stream=self._name)
        b.observe("fervid_stage_seconds", classification.detect_seconds, stream=self._name, stage="detect")
        b.observe("fervid_stage_seconds", classification.infer_seconds, stream=self._name, stage="infer")
        b.observe("fervid_stage_seconds", published.seconds, stream=self._name, stage="publish")

    def _give_up_stuck(self) -> None:
        """Free the slots of frames in the pipeline for longer than ``stuck_timeout_s``.

        A result that never arrives (a task lost with an actor that died at the wrong moment)
        would otherwise hold its slot for good, and a stream whose slots are all held stops.
        The frame is counted as dropped at the first stage that had not finished; its refs are
        simply forgotten (not cancelled: a task that does finish later is harmless).
        """
        for slot_id, chain in self._book.overdue().items():
            stage = self._pending_stage(chain)
            if self._book.give_up(slot_id, stage):
                self._count_drops(stage)
            self._publish_due(self._order.finish(slot_id, None))

    @staticmethod
    def _pending_stage(chain: _Chain) -> str:
        """The first stage a stuck frame had not finished (waiting for older frames counts as
        ``publish``: its faces were in)."""
        for stage, ref in (("detect", chain.detect_ref), ("infer", chain.infer_ref)):
            ready, _ = ray.wait([ref], timeout=0)
            if not ready:
                return stage
        return "publish"

    @staticmethod
    def _failed_stage(chain: _Chain) -> str:
        for stage, ref in (("detect", chain.detect_ref), ("infer", chain.infer_ref)):
            try:
                ray.get(ref, timeout=1)
            except Exception:
                return stage
        return "publish"

    def _drop(self, slot_id: int, stage: str) -> None:
        if self._book.dropped(slot_id, stage):
            self._count_drops(stage)
        self._publish_due(self._order.finish(slot_id, None))

    def _count_drops(self, stage: str, count: int = 1) -> None:
        if count:
            self._telemetry.buffer.inc("fervid_frames_dropped_total", count, stream=self._name, stage=stage)

    # -- reporting ----------------------------------------------------------------------------
    def _update_gauges(self) -> None:
        b = self._telemetry.buffer
        b.set("fervid_stream_fps", self._book.fps(), stream=self._name)
        b.set("fervid_frames_in_flight", self._book.in_flight, stream=self._name)
        b.set("fervid_stream_watched", 1.0 if self._watched.is_set() else 0.0, stream=self._name)
        if self._tracking.enabled:
            b.set("fervid_tracks_alive", self._tracking.tracks_alive, stream=self._name)
        for key, series in (("reconnects", "fervid_reconnects_total"),
                            ("open_attempts", "fervid_source_open_attempts_total")):
            new = getattr(self._source, key) - self._reported[key]
            if new > 0:
                b.inc(series, new, stream=self._name)
                self._reported[key] += new

    def status(self) -> dict:
        book = self._book.status()
        return {"name": self._name, "source": self._spec.display, "state": self._source.state.value,
                "fps": book.fps, "frames_captured": book.captured,
                "frames_processed": book.processed, "frames_dropped": book.dropped,
                "dropped_by_stage": book.dropped_by_stage, "faces": book.faces,
                "reconnects": self._source.reconnects, "open_attempts": self._source.open_attempts,
                "last_error": self._source.last_error,
                "latency_ms_p50": book.latency_ms_p50, "latency_ms_p95": book.latency_ms_p95,
                "in_flight": book.in_flight, "waiting": book.waiting, "max_in_flight": book.max_in_flight,
                "stuck_given_up": book.stuck_given_up, "tracking": self._tracking_status(),
                "last_seq": book.last_seq, "pid": os.getpid(),
                "restarted": self._restarted, "uptime_s": round(time.time() - self._started_at, 1)}

    def _tracking_status(self) -> dict | None:
        if not self._tracking.enabled:
            return None
        counts = self._tracking.counts
        return {"tracks_alive": self._tracking.tracks_alive, "tracks_started": counts.tracks_started,
                "full_scans": counts.full_scans, "region_scans": counts.region_scans,
                "boxes_carried": counts.boxes_carried, "scanned_share": round(counts.scanned_share, 4)}

    def inject_fault(self, kind: str) -> None:
        """Break this actor on purpose, for fault-injection tests (like ``pid`` on other actors).

        ``"freeze_completer"``: the completion thread blocks until the actor stops, so frames
        keep being captured but none is completed (a stall the controller should notice).
        ``"crash_completer"``: the completion thread raises, as an unexpected bug would; the
        process then exits and Ray restarts the actor.
        The fault takes effect within the completion thread's next turn (at most ~0.2 s).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        self._faults.put(kind)

    def set_max_in_flight(self, limit: int) -> None:
        """Change the stream's share of the pipeline (the controller rebalances as streams come and go)."""
        self._book.set_max_in_flight(limit)

    def set_pipeline(self, detectors: list, inference: list, publisher) -> None:
        """Use new actor handles (after the controller replaced an actor that could not restart)."""
        with self._submitting:
            self._detectors, self._inference, self._publisher = list(detectors), list(inference), publisher
            self._book.set_detectors(len(self._detectors))

    def stop(self, timeout_s: float = 5.0) -> dict:
        """Stop reading, let frames in flight finish (up to ``timeout_s``), release the source."""
        self._stop.set()
        self._count_drops("capture", self._book.close())
        self._reader.join(timeout=timeout_s)
        self._completer.join(timeout=timeout_s)
        self._source.close()
        self._telemetry.close()
        return self.status()
