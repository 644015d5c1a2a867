"""Shared by the reliability tests: one running service per module, a ZMQ watcher that timestamps
every message it receives, and a recorder of measured figures.

The recorder collects what each test measured (how long until a stream was back, what was lost)
and, when ``FERVID_RELIABILITY_REPORT=path.json`` is set, writes it there as JSON at the end of
the session. Figures are recorded before a test's assertions run, so a failing run still reports.
"""
from __future__ import annotations

import json
import os
import platform
import threading
import time
from dataclasses import dataclass

import pytest
import zmq

from fervid.benchmarks import metrics_delta as md
from fervid.comms.messages import MessageError, decode_message
from tests.conftest import SAMPLE_CLIP
from tests.services.service_helpers import running_service, scrape, wait_for

STREAMS = ("cam0", "cam1", "cam2")
STREAM_FPS = 6.0
"""Each stream is paced at this rate: together well below what 2 detectors on 2 cores process, so in
the steady state nothing is dropped and every gap a subscriber sees is the fault's doing."""
RELIABILITY_CAPTURE = {"stuck_timeout_s": 5.0}
"""The production defaults (reconnect back-off 0.5 s doubling to 10 s), except that a frame stuck
in the pipeline is given up after 5 s instead of 15 s (a frozen detector costs less test time)."""


@pytest.fixture(scope="module")
def service(ray_session):
    """The real service: ``STREAMS`` looped, paced streams of the sample clip, for the whole module."""
    streams = [{"name": name, "source": str(SAMPLE_CLIP), "loop": True, "fps": STREAM_FPS} for name in STREAMS]
    with running_service(ray_session, streams, capture=dict(RELIABILITY_CAPTURE)) as info:
        info["config"] = {"streams": len(STREAMS), "stream_fps": STREAM_FPS, "capture": dict(RELIABILITY_CAPTURE)}
        yield info


# -- a subscriber that timestamps what it receives ------------------------------------------------

@dataclass(frozen=True)
class Arrival:
    t: float
    """``time.time()`` when the message was read off the socket (same clock as ``ts_capture``:
    everything runs on this machine)."""
    stream: str
    seq: int
    ts_capture: float


class StreamWatcher:
    """A real ZMQ SUB socket read by a background thread, recording every message's arrival.

    It keeps reading through a publisher restart (ZMQ reconnects by itself; the socket is touched
    every 50 ms, which re-sends the subscription to the new publisher).
    """

    def __init__(self, endpoint: str, topics: tuple[str, ...] = ("",)):
        self.endpoint = endpoint
        self.topics = topics
        self.arrivals: list[Arrival] = []
        self.malformed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-watcher", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the watcher's socket did not open"

    def _run(self) -> None:
        context = zmq.Context()
        socket = context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, 10_000)
        socket.setsockopt(zmq.RECONNECT_IVL, 100)
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        for topic in self.topics:
            socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        socket.connect(self.endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not socket.poll(50):
                    continue
                frames = socket.recv_multipart()
                now = time.time()
                try:
                    message = decode_message(frames)
                except MessageError:
                    self.malformed += 1
                    continue
                with self._lock:
                    self.arrivals.append(Arrival(now, message.stream, message.seq, message.ts_capture))
        finally:
            socket.close(linger=0)
            context.term()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def of(self, stream: str, since: float = 0.0, until: float = float("inf")) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.stream == stream and since <= a.t <= until]

    def wait_flowing(self, streams, timeout: float = 60) -> None:
        start = time.time()
        wait_for(lambda: all(len(self.of(name, since=start)) >= 2 for name in streams), timeout,
                 interval=0.1, what=f"the watcher to receive {', '.join(streams)}")

    def first_captured_after(self, stream: str, t: float) -> Arrival | None:
        """The first message of a frame captured after ``t`` (a frame of the recovered stream)."""
        return next((a for a in self.of(stream, since=t) if a.ts_capture >= t), None)

    def wait_recovered(self, streams, t: float, timeout: float, what: str) -> dict[str, float]:
        """Seconds from ``t`` until each stream published a frame captured after ``t``."""
        arrivals = wait_for(lambda: (found := {n: self.first_captured_after(n, t) for n in streams})
                            and all(found.values()) and found, timeout, interval=0.05, what=what)
        return {name: round(arrival.t - t, 3) for name, arrival in arrivals.items()}

    def summary(self, stream: str, since: float, until: float, captured_after: float = 0.0) -> dict:
        """What a subscriber saw of ``stream`` in [since, until]: messages, the frames missing from
        the sequence (``seq_gap``), the longest silence, and whether numbers ever went backwards.
        ``captured_after`` leaves out messages of frames captured before it."""
        got = [a for a in self.of(stream, since, until) if a.ts_capture >= captured_after]
        seqs = [a.seq for a in got]
        times = [since, *(a.t for a in got), until]
        return {"messages": len(got),
                "seq_gap": sum(max(0, b - a - 1) for a, b in zip(seqs, seqs[1:])),
                "max_silence_s": round(max(b - a for a, b in zip(times, times[1:])), 3),
                "in_order": all(b > a for a, b in zip(seqs, seqs[1:]))}


@pytest.fixture
def watcher(service):
    """A watcher on every stream of the module's service, already receiving all of them."""
    stream_watcher = StreamWatcher(service["endpoint"])
    try:
        stream_watcher.wait_flowing(service["streams"])
        yield stream_watcher
    finally:
        stream_watcher.close()


# -- drops as /metrics counts them -----------------------------------------------------------------

def dropped_by_stream_and_stage(port: int) -> dict[str, dict[str, float]]:
    """``fervid_frames_dropped_total`` as {stream: {stage: count}} from a real scrape."""
    out: dict[str, dict[str, float]] = {}
    for (name, labels), value in scrape(port).items():
        if name == "fervid_frames_dropped_total":
            label = dict(labels)
            out.setdefault(label["stream"], {})[label["stage"]] = value
    return out


def drops_between(before: dict, after: dict) -> dict[str, dict[str, float]]:
    """Per stream and stage, ``after - before``; only non-zero entries."""
    out: dict[str, dict[str, float]] = {}
    for stream, stages in after.items():
        for stage, value in stages.items():
            grown = value - before.get(stream, {}).get(stage, 0.0)
            if grown:
                out.setdefault(stream, {})[stage] = grown
    return out


def processed_rate(before: md.Samples, after: md.Samples, seconds: float, stream: str | None = None) -> float:
    """Frames processed per second between two scrapes (one stream, or all)."""
    match = {"stream": stream} if stream else {}
    return md.total(md.delta(before, after), "fervid_frames_processed_total", **match) / seconds


# -- the recorder ----------------------------------------------------------------------------------

class Recorder:
    """Measured figures of this session's reliability tests, one entry per call."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def __call__(self, fault: str, **figures) -> dict:
        entry = {"fault": fault, **figures}
        self.entries.append(entry)
        return entry

    def document(self) -> dict:
        return {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
                "cpus": os.cpu_count(), "results": self.entries}


@pytest.fixture(scope="session")
def recorder():
    """Call ``recorder(fault, **figures)`` with what a test measured; with
    ``FERVID_RELIABILITY_REPORT=path.json`` everything recorded is written there at session end."""
    figures = Recorder()
    yield figures
    path = os.environ.get("FERVID_RELIABILITY_REPORT")
    if path:
        with open(path, "w") as out:
            json.dump(figures.document(), out, indent=2, sort_keys=False, default=str)
            out.write("\n")
