"""Run the real service (Ray actors, ZMQ publisher, metrics endpoint) and measure one window.

The service is started exactly as ``fervid up`` starts it, with N streams of the sample clip,
and left to warm up; then ``/metrics`` is scraped, the process tree's CPU time marked, and after
``duration_s`` both are taken again. Everything reported comes from those differences, so
start-up and warm-up never count. Nobody subscribes to the streams (as with a service feeding
only dashboards), so no JPEG is encoded; ``watched`` is left to the monitor tests.
"""
from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass

from fervid.benchmarks import metrics_delta as md
from fervid.benchmarks.common import SAMPLE_CLIP, log, percentile, ratio
from fervid.benchmarks.process_stats import ProcessSampler
from fervid.services.config import ServiceConfig, parse_config


@dataclass(frozen=True)
class RunSpec:
    streams: int
    paced: bool
    fps: float | None = None
    """Pace of each stream when ``paced`` (None: the clip's own 29.97 fps)."""
    duration_s: float = 20.0
    warmup_s: float = 5.0


FREE_PORT_RANGE: tuple[int, int] = (20_000, 32_000)
"""Where ``free_port`` looks: above Ray's worker ports (10002-19999) and below Linux's ephemeral range
(32768-60999). Ray binds its own servers (raylet, object manager, agents) to ephemeral ports after
``fervid up`` has checked its ports, so a port the kernel once handed out as ephemeral could be taken
by Ray in between: a scrape of the "metrics" port then read Ray's gRPC bytes (CI, stop 23)."""


def free_port() -> int:
    """A loopback port that is free now and that neither the kernel nor Ray hands out by itself."""
    pick = random.SystemRandom()
    for _ in range(500):
        port = pick.randrange(*FREE_PORT_RANGE)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port found in {FREE_PORT_RANGE[0]}-{FREE_PORT_RANGE[1] - 1}")


def service_config(spec: RunSpec, overrides: dict | None = None) -> ServiceConfig:
    """N streams of the sample clip, looped; free ports on loopback; defaults for the rest."""
    streams = [{"name": f"cam{i + 1}", "source": str(SAMPLE_CLIP), "loop": True, "pace": spec.paced,
                **({"fps": spec.fps} if spec.fps else {})} for i in range(spec.streams)]
    raw = {"streams": streams, "publisher": {"endpoint": f"tcp://127.0.0.1:{free_port()}"},
           "metrics": {"port": free_port()}, "status_interval_s": 1.0}
    for section, values in (overrides or {}).items():
        if section == "streams" or not isinstance(raw.setdefault(section, {}), dict):
            raise ValueError(f"cannot override {section!r}: only settings inside a section (e.g. detector.downscale)")
        raw[section].update(values)
    return parse_config(raw, origin="benchmark config")


def _latency_ms(samples: md.Samples, **match: str) -> dict:
    buckets = md.histogram_buckets(samples, "fervid_latency_seconds", **match)
    out = {}
    for q in (50, 95, 99):
        value = md.histogram_quantile(q / 100, buckets)
        out[f"p{q}"] = round(1000 * value, 1) if value is not None else None
    return out


def summarise(spec: RunSpec, window: md.Samples, seconds: float, cpu_seconds: float, memory: dict,
              stage_ms: dict) -> dict:
    """Throughput, latency and drops of one measured window, in total and per stream."""
    per_stream = {}
    for i in range(spec.streams):
        name = f"cam{i + 1}"
        processed = md.total(window, "fervid_frames_processed_total", stream=name)
        per_stream[name] = {
            "frames_per_s": round(processed / seconds, 2),
            "faces_per_s": round(md.total(window, "fervid_faces_total", stream=name) / seconds, 2),
            "captured": int(md.total(window, "fervid_frames_captured_total", stream=name)),
            "processed": int(processed),
            "dropped": {k: int(v) for k, v in md.by_label(window, "fervid_frames_dropped_total", "stage",
                                                          stream=name).items() if v},
            "latency_ms": _latency_ms(window, stream=name)}
    processed = md.total(window, "fervid_frames_processed_total")
    captured = md.total(window, "fervid_frames_captured_total")
    dropped = {k: int(v) for k, v in md.by_label(window, "fervid_frames_dropped_total", "stage").items() if v}
    rates = [s["frames_per_s"] for s in per_stream.values()]
    batch = md.histogram_buckets(window, "fervid_inference_batch_size")
    batch_count = batch[-1][1] if batch else 0
    batch_sum = md.total(window, "fervid_inference_batch_size_sum")
    return {"streams": spec.streams, "paced": spec.paced, "fps_per_stream": spec.fps,
            "seconds": round(seconds, 2), "frames_per_s": round(processed / seconds, 2),
            "faces_per_s": round(md.total(window, "fervid_faces_total") / seconds, 2),
            "captured": int(captured), "processed": int(processed), "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "drop_fraction": ratio(sum(dropped.values()), captured) or 0.0,
            "latency_ms": _latency_ms(window),
            "per_stream_fps_min": min(rates) if rates else None,
            "per_stream_fps_max": max(rates) if rates else None,
            "mean_batch_faces": round(batch_sum / batch_count, 2) if batch_count else None,
            "cpu_cores_used": round(cpu_seconds / seconds, 2), "memory": memory,
            "stage_ms_mean": stage_ms, "scans": _scans(window, processed), "per_stream": per_stream}


def _scans(window: md.Samples, processed: float) -> dict:
    """What the scan plans did per processed frame (all streams): the share of full scans, regions,
    carried boxes and pixels scanned. Counted when frames are sent to a detector, so within a window
    they may run a frame or two ahead of the processed count."""
    def per_frame(metric: str) -> float | None:
        return round(md.total(window, metric) / processed, 4) if processed else None
    return {"full_scan_share": per_frame("fervid_full_scans_total"),
            "regions_per_frame": per_frame("fervid_region_scans_total"),
            "boxes_carried_per_frame": per_frame("fervid_boxes_carried_total"),
            "pixels_per_frame": per_frame("fervid_scanned_pixels_total")}


def _stage_means(window: md.Samples) -> dict:
    means = {}
    for stage in ("detect", "infer", "publish"):
        count = md.total(window, "fervid_stage_seconds_count", stage=stage)
        means[stage] = round(1000 * md.total(window, "fervid_stage_seconds_sum", stage=stage) / count, 2) if count else None
    return means


def measure(spec: RunSpec, overrides: dict | None = None) -> dict:
    """Start the service for ``spec``, measure one window after warm-up, stop it."""
    import ray

    from fervid.services.service import start_service, stop_service

    config = service_config(spec, overrides)
    url = f"http://127.0.0.1:{config.metrics.port}/metrics"
    sampler = ProcessSampler(interval_s=0.5).start()
    controller = start_service(config)
    try:
        _wait_for_frames(url, spec.streams, timeout_s=120)
        time.sleep(spec.warmup_s)
        before, cpu_before, began = md.scrape(url), sampler.cpu_mark(), time.monotonic()
        time.sleep(spec.duration_s)
        time.sleep(1.2)  # let the actors ship the window's last metrics (they ship every ~0.5 s)
        after, cpu_after, ended = md.scrape(url), sampler.cpu_mark(), time.monotonic()
        status = ray.get(controller.status.remote(), timeout=30)
    finally:
        stop_service(controller)
        sampler.stop()
    seconds = ended - began
    window = md.delta(before, after)
    result = summarise(spec, window, seconds, sampler.cpu_between(cpu_before, cpu_after),
                       sampler.memory_summary(since=began, until=ended), _stage_means(window))
    result["cpu_cores_by_process"] = {label: round(cpu / seconds, 3) for label, cpu in
                                      sampler.cpu_by_label(cpu_before, cpu_after).items() if cpu / seconds >= 0.005}
    result["restarts"] = int(md.total(after, "fervid_actor_restarts_total"))
    result["actors"] = {"detectors": status.get("detectors"), "inference": status.get("inference_actors")}
    log(f"  {spec.streams} stream(s) {'paced' if spec.paced else 'unpaced'}: {result['frames_per_s']} frames/s, "
        f"p99 {result['latency_ms']['p99']} ms, dropped {result['dropped_total']}")
    return result


def _wait_for_frames(url: str, streams: int, timeout_s: float) -> None:
    """Until every stream has published at least one frame (the model is warm by then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            samples = md.scrape(url)
        except OSError:
            samples = {}
        done = sum(1 for i in range(streams)
                   if md.total(samples, "fervid_frames_processed_total", stream=f"cam{i + 1}") > 0)
        if done == streams:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the service published no frames on some of its {streams} streams within {timeout_s:.0f} s")


def latency_percentiles_ms(latencies_s: list[float]) -> dict:
    """Exact p50/p95/p99 (ms) of a list of latencies, for the baselines."""
    return {f"p{q}": (round(1000 * v, 1) if (v := percentile(latencies_s, q)) is not None else None)
            for q in (50, 95, 99)}
