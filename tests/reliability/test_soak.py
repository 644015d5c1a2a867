"""Soak (issue 8): the real service runs four paced, looped streams for a long time, and no process
of it leaks memory, file descriptors or threads.

Run it on purpose (it takes ``FERVID_SOAK_SECONDS``, 30 minutes by default):

    FERVID_SOAK_REPORT=soak_report.json QT_QPA_PLATFORM=offscreen \\
        .venv/bin/python -m pytest tests/reliability/test_soak.py -m soak -q -p no:cacheprovider --timeout 2700

A check of the test itself: ``FERVID_SOAK_SECONDS=120 FERVID_SOAK_WARMUP_SECONDS=30``.

What it does. The service is started on the session's own local Ray (``ray_session``: 2 CPUs, so
2 detectors and one inference actor) with ``STREAMS`` streams of the sample clip, looped and paced
at ``FERVID_SOAK_FPS`` (5) frames/s each, and one ZMQ subscriber in this process reading every
stream (so the publisher fetches and JPEG-encodes every frame: the longest path a frame can take).
The soak clock starts when every stream has published frames; ``FERVID_SOAK_SECONDS`` is the whole
run on that clock and the first ``FERVID_SOAK_WARMUP_SECONDS`` of it are warm-up (allocators, the
object store and TensorFlow reach their working size; nothing is asserted on them). Every
``FERVID_SOAK_INTERVAL_SECONDS`` (30, or less for short runs) it records, for every process of the
service, resident memory (with its anonymous / file / shared-memory parts), open file descriptors
and threads; ``/metrics``; ``controller.status``; and what the subscriber received.

Every process of the service means the whole process tree of this test process (the driver, which
started Ray: GCS, raylet, Ray's agents and helpers, and the raylet's worker processes) plus any actor
process found outside it. Each process gets a stable role: actor processes by asking the actors for
their pid (``detector:0``, ``capture:cam1``...), Ray's own processes by their program
(``gcs_server``, ``raylet``, ``dashboard/agent.py``...). Workers that belong to no actor (Ray's idle
worker pool, which Ray starts and reaps on its own schedule) are recorded but not judged.

Assertions, on the samples after warm-up. "First" is the median of the samples in the first
``FERVID_SOAK_WINDOW_SECONDS`` (300, or a quarter of the post-warm-up span if shorter) after
warm-up, "last" the median of those in the same span at the end; medians, so one GC or allocator
spike does not decide:

- resident memory of every process: last < first * 1.05;
- open fds and threads of every process: last <= first + 2. The slack covers a constant, not a
  trend: a socket or thread that exists only around one event (a Ray gRPC channel opened lazily on
  first use, the metrics endpoint's per-request thread, a helper thread of Ray's core worker). A leak
  per frame, per file loop (the clip is reopened every 55 s at 5 fps) or per scrape would add tens
  to hundreds over the run;
- no process restarted: the pid of every role is the same in every sample, Ray's
  ``fervid_actor_restarts_total`` stays 0 and no capture reports ``restarted``;
- processed frames of every stream increase between every two consecutive samples, and the
  subscriber keeps receiving every stream;
- every stream is ``up`` at the end (controller status and ``fervid_stream_up``).

Each sample also names every process's threads (``/proc/PID/task/*/comm``) and the kinds of its open
fds, so a failure says what grew (e.g. ``+2 event_engine``: gRPC's thread pool inside Ray).

With ``FERVID_SOAK_REPORT=path.json`` every sample and the per-process summary are written there as
JSON; the file is rewritten after each sample (``"complete": false`` until the run ends), so a long
run can be watched.
"""
from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import pytest

from fervid.benchmarks import metrics_delta as md
from fervid.benchmarks.process_stats import process_label
from tests.conftest import SAMPLE_CLIP
from tests.services.service_helpers import free_port, wait_for

STREAMS = 4
RSS_GROWTH_LIMIT_PCT = 5.0
RAY_AGENTS = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}
"""Ray's per-node agents: Python processes titled like workers, but as permanent as the raylet."""
FD_SLACK = 2
THREAD_SLACK = 2
MIB = 1024 * 1024


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class SoakSettings:
    streams: int
    fps: float
    duration_s: float
    warmup_s: float
    interval_s: float
    window_s: float
    report: str | None

    @classmethod
    def from_env(cls) -> "SoakSettings":
        duration = _env_float("FERVID_SOAK_SECONDS", 1800.0)
        warmup = _env_float("FERVID_SOAK_WARMUP_SECONDS", 300.0)
        if not 0 <= warmup < duration:
            raise ValueError(f"FERVID_SOAK_WARMUP_SECONDS ({warmup}) must be below FERVID_SOAK_SECONDS ({duration})")
        measured = duration - warmup
        # ~30 s between samples; short runs sample faster so each window still holds several samples.
        interval = _env_float("FERVID_SOAK_INTERVAL_SECONDS", min(30.0, max(5.0, measured / 20)))
        window = _env_float("FERVID_SOAK_WINDOW_SECONDS", min(300.0, measured / 4))
        return cls(streams=STREAMS, fps=_env_float("FERVID_SOAK_FPS", 5.0), duration_s=duration,
                   warmup_s=warmup, interval_s=interval, window_s=window,
                   report=os.environ.get("FERVID_SOAK_REPORT") or None)


SETTINGS = SoakSettings.from_env()
STREAM_NAMES = tuple(f"cam{i + 1}" for i in range(SETTINGS.streams))

pytestmark = [
    pytest.mark.soak,
    # Long enough for the run, start-up and shutdown whatever --timeout / the ini's 600 s says.
    pytest.mark.timeout(int(SETTINGS.duration_s + 900)),
]


# -- who is who: every process of the service, with a stable role --------------------------------

def _ray_program_role(process: psutil.Process) -> str:
    """Ray's own processes by program: ``gcs_server``, ``raylet``, ``dashboard/agent.py``..."""
    try:
        argv = process.cmdline()
    except psutil.Error:
        return "?"
    label = process_label(process)
    if label.endswith(".py"):  # a Python helper: keep its folder, agent.py alone is ambiguous
        for part in argv[1:]:
            if part.endswith(".py"):
                return "/".join(Path(part).parts[-2:])
    return label


def actor_pids(controller) -> tuple[dict[str, int], dict[str, dict]]:
    """{role: pid} of every service actor, asked of the actors themselves, and the stream statuses."""
    import ray

    from fervid.services.runtime import NAMESPACE

    status = ray.get(controller.status.remote(), timeout=30)
    roles = {"controller": controller.pid.remote()}
    for name in ("metrics", "publisher"):
        roles[name] = ray.get_actor(name, namespace=NAMESPACE).pid.remote()
    for i in range(status["inference_actors"]):
        roles[f"inference:{i}"] = ray.get_actor(f"inference:{i}", namespace=NAMESPACE).pid.remote()
    for i in range(status["detectors"]):
        roles[f"detector:{i}"] = ray.get_actor(f"detector:{i}", namespace=NAMESPACE).pid.remote()
    pids: dict[str, int] = {}
    for role, ref in roles.items():
        try:
            pids[role] = int(ray.get(ref, timeout=30))
        except Exception:  # unanswered: recorded as missing in this sample
            continue
    streams = {s["name"]: s for s in status["streams"]}
    for name, stream in streams.items():
        if stream.get("pid"):
            pids[f"capture:{name}"] = int(stream["pid"])
    return pids, streams


def _proc_status_kib(pid: int) -> dict[str, int]:
    """VmRSS and its parts (RssAnon, RssFile, RssShmem) from /proc/PID/status, in KiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def process_stats(process: psutil.Process) -> dict | None:
    try:
        with process.oneshot():
            stats = {"pid": process.pid, "rss": process.memory_info().rss, "fds": process.num_fds(),
                     "threads": process.num_threads()}
    except psutil.Error:
        return None
    parts = _proc_status_kib(process.pid)
    stats.update({"rss_anon": parts.get("RssAnon", 0) * 1024, "rss_file": parts.get("RssFile", 0) * 1024,
                  "rss_shmem": parts.get("RssShmem", 0) * 1024,
                  "thread_names": _thread_names(process.pid), "fd_kinds": _fd_kinds(process.pid)})
    return stats


def _thread_names(pid: int) -> dict[str, int]:
    """Threads by name (``/proc/PID/task/*/comm``): says which pool grew when the count does."""
    names: Counter[str] = Counter()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as handle:
                names[handle.read().strip()] += 1
        except OSError:
            continue
    return dict(names)


def _fd_kinds(pid: int) -> dict[str, int]:
    """Open fds by kind (socket, pipe, anon_inode:[eventfd], /dev/shm, other files)."""
    kinds: Counter[str] = Counter()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("socket:", "pipe:")):
            kinds[target.split(":", 1)[0]] += 1
        elif target.startswith("anon_inode:"):
            kinds[target] += 1
        elif target.startswith("/dev/shm"):
            kinds["/dev/shm"] += 1
        elif target.startswith("/dev/"):
            kinds[target] += 1
        else:
            kinds["file"] += 1
    return dict(kinds)


def _grown(before: dict[str, int], after: dict[str, int]) -> str:
    """"+3 event_engine, +1 socket": which names or kinds account for a growth."""
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    return ", ".join(f"{v:+d} {k}" for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1])) if v)


def sample_processes(actors: dict[str, int]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(stable roles, unowned Ray workers): stats of every process of the service."""
    me = psutil.Process(os.getpid())
    try:
        everyone = {p.pid: p for p in me.children(recursive=True)}
    except psutil.Error:
        everyone = {}
    everyone[me.pid] = me
    for pid in actors.values():  # an actor outside this tree (should not happen on a local Ray)
        if pid not in everyone:
            try:
                everyone[pid] = psutil.Process(pid)
            except psutil.Error:
                pass
    by_pid = {pid: role for role, pid in actors.items()}
    roles: dict[str, dict] = {}
    unowned: dict[str, dict] = {}
    seen: Counter[str] = Counter()
    for pid in sorted(everyone):
        process = everyone[pid]
        stats = process_stats(process)
        if stats is None:
            continue
        if pid == me.pid:
            roles["driver"] = stats
            continue
        if pid in by_pid:
            roles[by_pid[pid]] = stats
            continue
        label = _ray_program_role(process)
        stats["label"] = label
        if label.startswith("ray::") and label not in RAY_AGENTS:  # a worker no actor owns: Ray's idle pool
            unowned[f"{label}@{pid}"] = stats
            continue
        seen[label] += 1
        roles[label if seen[label] == 1 else f"{label}#{seen[label]}"] = stats
    return roles, unowned


# -- what the service did ---------------------------------------------------------------------------

class CountingSubscriber:
    """A real ZMQ subscriber to every stream, in a thread: counts valid messages and seq order."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.received: Counter[str] = Counter()
        self.out_of_order: Counter[str] = Counter()
        self.invalid = 0
        self.with_jpeg = 0
        self._last_seq: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-subscriber", daemon=True)

    def start(self) -> "CountingSubscriber":
        self._thread.start()
        return self

    def _run(self) -> None:
        import zmq

        from fervid.comms.messages import decode_message

        context = zmq.Context()
        socket = context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, 1000)
        socket.connect(self.endpoint)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            while not self._stop.is_set():
                if not socket.poll(200):
                    continue
                while True:
                    try:
                        parts = socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        message = decode_message(parts)
                    except Exception:
                        self.invalid += 1
                        continue
                    self.received[message.stream] += 1
                    self.with_jpeg += bool(message.jpeg)
                    if message.seq <= self._last_seq.get(message.stream, 0):
                        self.out_of_order[message.stream] += 1
                    self._last_seq[message.stream] = message.seq
        finally:
            socket.close(linger=0)
            context.term()

    def snapshot(self) -> dict:
        return {"received": dict(self.received), "out_of_order": dict(self.out_of_order),
                "invalid": self.invalid, "with_jpeg": self.with_jpeg}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def metrics_snapshot(url: str) -> dict:
    """The counters that tell whether the service kept working, per stream."""
    try:
        samples = md.scrape(url)
    except OSError as exc:
        return {"error": str(exc)}
    per_stream = {}
    for name in STREAM_NAMES:
        per_stream[name] = {
            "captured": int(md.total(samples, "fervid_frames_captured_total", stream=name)),
            "processed": int(md.total(samples, "fervid_frames_processed_total", stream=name)),
            "encoded": int(md.total(samples, "fervid_frames_encoded_total", stream=name)),
            "dropped": {k: int(v) for k, v in md.by_label(samples, "fervid_frames_dropped_total", "stage",
                                                          stream=name).items() if v},
            "faces": int(md.total(samples, "fervid_faces_total", stream=name)),
            "reconnects": int(md.total(samples, "fervid_reconnects_total", stream=name)),
            "up": md.total(samples, "fervid_stream_up", stream=name),
        }
    latency = md.histogram_buckets(samples, "fervid_latency_seconds")
    return {"per_stream": per_stream,
            "processed": sum(s["processed"] for s in per_stream.values()),
            "dropped": sum(sum(s["dropped"].values()) for s in per_stream.values()),
            "restarts": {k: int(v) for k, v in md.by_label(samples, "fervid_actor_restarts_total", "kind").items()},
            "latency_count": int(latency[-1][1]) if latency else 0,
            "latency_buckets": latency}


def _stream_brief(stream: dict) -> dict:
    keys = ("state", "fps", "frames_captured", "frames_processed", "frames_dropped", "dropped_by_stage",
            "in_flight", "max_in_flight", "stuck_given_up", "reconnects", "last_error", "latency_ms_p50",
            "latency_ms_p95", "pid", "restarted", "uptime_s")
    return {k: stream.get(k) for k in keys}


# -- judging ------------------------------------------------------------------------------------------

def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour: the trend, for the report."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return None
    return round(3600 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var, 2)


def analyse(settings: SoakSettings, samples: list[dict]) -> tuple[dict, list[str]]:
    """Per-role summary and the list of failures (empty: the soak passed)."""
    failures: list[str] = []
    post = [s for s in samples if s["elapsed_s"] >= settings.warmup_s]
    if len(post) < 4:
        return {}, [f"only {len(post)} samples after warm-up: the run is too short to judge"]
    end = post[-1]["elapsed_s"]
    first = [s for s in post if s["elapsed_s"] <= settings.warmup_s + settings.window_s]
    last = [s for s in post if s["elapsed_s"] >= end - settings.window_s]
    if len(first) < 2 or len(last) < 2 or first[-1]["elapsed_s"] >= last[0]["elapsed_s"]:
        # Overlapping windows would compare a sample with itself: fall back to the first and last quarter.
        quarter = max(2, len(post) // 4)
        first, last = post[:quarter], post[-quarter:]

    summary: dict[str, dict] = {}
    roles_at_warmup = set(post[0]["processes"])
    roles_seen = set().union(*(s["processes"] for s in post))
    for role in sorted(roles_seen):
        series = [(s["elapsed_s"], s["processes"].get(role)) for s in post]
        # Restarts count from the first sample (warm-up included); a role's pid must never change.
        pids = [(s["elapsed_s"], s["processes"][role]["pid"]) for s in samples if role in s["processes"]]
        pid_changes = [f"{a[1]}->{b[1]} at {b[0]:.0f} s" for a, b in zip(pids, pids[1:]) if a[1] != b[1]]
        missing = [t for t, st in series if st is None]

        def values(window: list[dict], key: str) -> list[float]:
            return [s["processes"][role][key] for s in window if role in s["processes"]]

        rss_first, rss_last = _median(values(first, "rss")), _median(values(last, "rss"))
        fds_first, fds_last = _median(values(first, "fds")), _median(values(last, "fds"))
        thr_first, thr_last = _median(values(first, "threads")), _median(values(last, "threads"))
        growth = (round(100.0 * (rss_last - rss_first) / rss_first, 2)
                  if rss_first and rss_last is not None else None)
        present = [st for _, st in series if st]
        row = {
            "pid": present[0]["pid"] if present else None,
            "label": next((st.get("label") for st in present if st.get("label")), role),
            "rss_mib_warmup_end": round(present[0]["rss"] / MIB, 1) if present else None,
            "rss_mib_end": round(present[-1]["rss"] / MIB, 1) if present else None,
            "rss_mib_first_window_median": round(rss_first / MIB, 2) if rss_first else None,
            "rss_mib_last_window_median": round(rss_last / MIB, 2) if rss_last else None,
            "rss_growth_pct": growth,
            "rss_mib_peak": round(max(st["rss"] for st in present) / MIB, 1) if present else None,
            "rss_parts_mib_end": ({k: round(present[-1][k] / MIB, 1) for k in ("rss_anon", "rss_file", "rss_shmem")}
                                  if present else None),
            "rss_anon_growth_pct": None,
            "fds_warmup_end": present[0]["fds"] if present else None, "fds_end": present[-1]["fds"] if present else None,
            "fds_first_median": fds_first, "fds_last_median": fds_last, "fds_max": max((st["fds"] for st in present), default=None),
            "threads_warmup_end": present[0]["threads"] if present else None,
            "threads_end": present[-1]["threads"] if present else None,
            "threads_first_median": thr_first, "threads_last_median": thr_last,
            "threads_max": max((st["threads"] for st in present), default=None),
            "rss_slope_mib_per_h": _slope_per_hour([(t, st["rss"] / MIB) for t, st in series if st]),
            "threads_grown": _grown(present[0].get("thread_names", {}), present[-1].get("thread_names", {}))
            if present else None,
            "fds_grown": _grown(present[0].get("fd_kinds", {}), present[-1].get("fd_kinds", {})) if present else None,
            "pid_changes": pid_changes, "missing_samples": len(missing)}
        anon_first, anon_last = _median(values(first, "rss_anon")), _median(values(last, "rss_anon"))
        if anon_first:
            row["rss_anon_growth_pct"] = round(100.0 * (anon_last - anon_first) / anon_first, 2)
        summary[role] = row

        if role not in roles_at_warmup:
            failures.append(f"{role}: appeared after warm-up (pid {row['pid']}): a new or restarted process")
        if pid_changes:
            failures.append(f"{role}: restarted (pid {', '.join(pid_changes)})")
        if missing:
            failures.append(f"{role}: missing in {len(missing)} of {len(post)} samples after warm-up "
                            f"(first at {missing[0]:.0f} s)")
        if growth is not None and growth >= RSS_GROWTH_LIMIT_PCT:
            failures.append(f"{role}: resident memory grew {growth}% ({row['rss_mib_first_window_median']} -> "
                            f"{row['rss_mib_last_window_median']} MiB, median of first vs last window)")
        if fds_first is not None and fds_last is not None and fds_last > fds_first + FD_SLACK:
            failures.append(f"{role}: open fds grew {fds_first:g} -> {fds_last:g} "
                            f"({_grown(present[0].get('fd_kinds', {}), present[-1].get('fd_kinds', {}))})")
        if thr_first is not None and thr_last is not None and thr_last > thr_first + THREAD_SLACK:
            failures.append(f"{role}: threads grew {thr_first:g} -> {thr_last:g} "
                            f"({_grown(present[0].get('thread_names', {}), present[-1].get('thread_names', {}))})")

    # The service kept working, every stream, all the time.
    for name in STREAM_NAMES:
        counts = [(s["elapsed_s"], s["metrics"].get("per_stream", {}).get(name, {}).get("processed"))
                  for s in samples]
        stalls = [f"{a[0]:.0f}-{b[0]:.0f} s" for a, b in zip(counts, counts[1:])
                  if a[1] is None or b[1] is None or b[1] <= a[1]]
        if stalls:
            failures.append(f"{name}: processed frames did not increase in {len(stalls)} interval(s): "
                            f"{', '.join(stalls[:5])}")
        received = [s["subscriber"]["received"].get(name, 0) for s in (post[0], post[-1])]
        if received[1] <= received[0]:
            failures.append(f"{name}: the subscriber received nothing after warm-up")
    final = samples[-1]
    for name in STREAM_NAMES:
        state = final["streams"].get(name, {}).get("state")
        up = final["metrics"].get("per_stream", {}).get(name, {}).get("up")
        if state != "up" or up != 1.0:
            failures.append(f"{name}: not up at the end (status {state!r}, fervid_stream_up {up})")
        if final["streams"].get(name, {}).get("restarted"):
            failures.append(f"{name}: its capture actor reports it was restarted")
    restarts = final["metrics"].get("restarts", {})
    if any(restarts.values()):
        failures.append(f"fervid_actor_restarts_total: {restarts}")
    subscriber = final["subscriber"]
    if subscriber["invalid"] or any(subscriber["out_of_order"].values()):
        failures.append(f"subscriber: {subscriber['invalid']} invalid, out of order {subscriber['out_of_order']}")
    return summary, failures


def totals(settings: SoakSettings, samples: list[dict]) -> dict:
    """Frames in total and per stream over the whole run and over the post-warm-up part."""
    post = [s for s in samples if s["elapsed_s"] >= settings.warmup_s]
    first, final = (post[0] if post else samples[0]), samples[-1]
    seconds = final["elapsed_s"] - first["elapsed_s"]
    out = {"whole_run": final["metrics"].get("per_stream"), "after_warmup": {}}
    for name in STREAM_NAMES:
        a = first["metrics"].get("per_stream", {}).get(name, {})
        b = final["metrics"].get("per_stream", {}).get(name, {})
        if not a or not b:
            continue
        dropped = {k: v - a.get("dropped", {}).get(k, 0) for k, v in b.get("dropped", {}).items()}
        processed = b["processed"] - a["processed"]
        out["after_warmup"][name] = {
            "seconds": round(seconds, 1), "captured": b["captured"] - a["captured"], "processed": processed,
            "processed_per_s": round(processed / seconds, 2) if seconds else None,
            "dropped": {k: v for k, v in dropped.items() if v},
            "messages_received": (final["subscriber"]["received"].get(name, 0)
                                  - first["subscriber"]["received"].get(name, 0))}
    whole = final["metrics"]
    out["processed_total"] = whole.get("processed")
    out["dropped_total"] = whole.get("dropped")
    out["dropped_by_stage_total"] = dict(sum((Counter(s["dropped"]) for s in (whole.get("per_stream") or {}).values()),
                                             Counter()))
    return out


def write_report(path: str | None, document: dict) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1, default=str))
    temporary.replace(target)


# -- the soak -----------------------------------------------------------------------------------------

def test_soak_four_streams_no_leak(request):
    """Four paced streams for FERVID_SOAK_SECONDS: no process grows, restarts or stalls."""
    markexpr = request.config.getoption("markexpr") or ""
    if "soak" not in markexpr:
        # Safety net until pyproject's addopts deselects the marker (-m "not soak"): never start a
        # 30-minute run inside the normal suite. Reported by -ra, so it is not a silent pass.
        pytest.skip("soak runs only when asked for: pytest -m soak tests/reliability/test_soak.py")
    request.getfixturevalue("ray_session")  # after the guard: a skipped soak starts no Ray

    import ray

    from fervid.services.config import parse_config
    from fervid.services.service import start_service, stop_service

    settings = SETTINGS
    ports = {"zmq": free_port(), "metrics": free_port()}
    config = parse_config({
        "streams": [{"name": name, "source": str(SAMPLE_CLIP), "loop": True, "pace": True, "fps": settings.fps}
                    for name in STREAM_NAMES],
        "publisher": {"endpoint": f"tcp://127.0.0.1:{ports['zmq']}"},
        "metrics": {"port": ports["metrics"]},
    }, origin="soak config")
    url = f"http://127.0.0.1:{ports['metrics']}/metrics"
    document = {"settings": {**asdict(settings), "clip": SAMPLE_CLIP.name, "ray_cpus": ray.cluster_resources().get("CPU"),
                             "rss_growth_limit_pct": RSS_GROWTH_LIMIT_PCT, "fd_slack": FD_SLACK,
                             "thread_slack": THREAD_SLACK, "subscriber": "one SUB socket, every stream",
                             # what Ray's processes were started with (services/allocator.py; conftest sets it)
                             "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX")},
                "complete": False, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "samples": []}
    samples: list[dict] = document["samples"]

    began = time.monotonic()
    controller = start_service(config)
    subscriber = CountingSubscriber(config.publisher.endpoint).start()
    try:
        def every_stream_flows() -> bool:
            snapshot = metrics_snapshot(url)
            return all(s["processed"] > 0 for s in snapshot.get("per_stream", {}).values()) and "error" not in snapshot

        wait_for(every_stream_flows, 180, what="every stream to publish frames")
        # ...and the controller knows every capture actor's pid, so the first sample has every role.
        wait_for(lambda: len([k for k in actor_pids(controller)[0] if k.startswith("capture:")]) == len(STREAM_NAMES),
                 30, what="the controller to report every capture actor")
        document["startup_s"] = round(time.monotonic() - began, 1)
        status = ray.get(controller.status.remote(), timeout=30)
        document["service"] = {"detectors": status["detectors"], "inference_actors": status["inference_actors"]}

        t0 = time.monotonic()
        next_at = t0
        while True:
            elapsed = time.monotonic() - t0
            actors, streams = actor_pids(controller)
            roles, unowned = sample_processes(actors)
            samples.append({
                "elapsed_s": round(elapsed, 1), "time": time.time(), "phase": "warmup" if elapsed < settings.warmup_s else "soak",
                "processes": roles, "unowned_workers": unowned,
                "metrics": metrics_snapshot(url),
                "streams": {name: _stream_brief(s) for name, s in streams.items()},
                "subscriber": subscriber.snapshot(),
                "load_avg": os.getloadavg()})
            write_report(settings.report, document)
            if elapsed >= settings.duration_s - 1e-6:
                break
            next_at = min(next_at + settings.interval_s, t0 + settings.duration_s)
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        subscriber.stop()
        stop_service(controller)

    summary, failures = analyse(settings, samples)
    document.update({"complete": True, "passed": not failures, "failures": failures,
                     "per_process": summary, "frames": totals(settings, samples),
                     "unowned_workers_seen": sorted({k for s in samples for k in s["unowned_workers"]})})
    write_report(settings.report, document)
    assert not failures, "soak failed:\n" + "\n".join(failures)
