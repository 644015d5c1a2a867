"""fervid.benchmarks.pipeline: the whole service on N streams, against what one machine can do without it.

Questions answered, all measured in one run on one machine:

* **Throughput**: N streams of the sample clip, unpaced (each read as fast as the pipeline takes
  it), for a fixed window: total and per-stream frames/s, faces/s, capture-to-publish latency
  p50/p95/p99, frames dropped, CPU cores used and memory of every process.
* **Baselines**: (a) ``naive``, the loop a typical FER script runs in one process (read, Haar,
  classify, next frame); (b) ``ceiling``, detection + classification alone in one plain
  single-threaded process per core on frames decoded in advance. Reported as
  ``pipeline_over_naive`` and ``pipeline_over_ceiling`` (goal: at least 0.8 of the ceiling).
* **Paced**: N live-like streams at 15 fps each; the largest N with no dropped frame and p99
  latency under the budget (150 ms).
* **Scaling**: 1, 2, 4, 8 streams, unpaced and live (paced at the clip's own 29.97 fps): does
  throughput hold under overload, are drops counted, does memory stay flat?

Run: ``python -m fervid.benchmarks.pipeline --json --out docs/benchmarks/pipeline.json --plot docs/benchmarks/pipeline.png``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fervid.benchmarks.baselines import LoopResult, run_ceiling, run_naive
from fervid.benchmarks.common import SAMPLE_CLIP, emit, log, machine_info, make_parser, ratio, require_bench
from fervid.benchmarks.service_run import RunSpec, latency_percentiles_ms, measure, service_config
from fervid.errors import FervidError
from fervid.services.config import DetectorConfig

CEILING_GOAL = 0.8
SECTIONS = ("headline", "paced", "scaling")
PACED_FPS = 15.0
P99_BUDGET_MS = 150.0


def detector_params(overrides: dict | None = None):
    """The service's detector settings (defaults plus ``--set detector.*``), so that baselines
    and pipeline do the same work."""
    return DetectorConfig(**(overrides or {}).get("detector", {})).params()


def baseline_summary(results: list[LoopResult], processes: int) -> dict:
    seconds = max(r.seconds for r in results)
    frames = sum(r.frames for r in results)
    latencies = [value for r in results for value in r.latencies_s]
    return {"processes": processes, "seconds": round(seconds, 2), "frames": frames,
            "frames_per_s": round(sum(r.fps for r in results), 2),
            "faces_per_s": round(sum(r.faces / r.seconds for r in results), 2),
            "latency_ms": latency_percentiles_ms(latencies)}


def run_baselines(duration_s: float, overrides: dict) -> dict:
    params = detector_params(overrides)
    log(f"naive loop, {duration_s:.0f} s ...")
    naive = baseline_summary([run_naive(SAMPLE_CLIP, params, duration_s)], 1)
    cores = os.cpu_count() or 1
    log(f"ceiling: {cores} single-threaded processes, {duration_s:.0f} s ...")
    ceiling = baseline_summary(run_ceiling(SAMPLE_CLIP, params, duration_s, cores), cores)
    naive["name"] = "naive single-process loop (read, Haar, classify, next frame)"
    ceiling["name"] = f"detection + classification alone in {cores} plain processes, frames pre-decoded"
    return {"naive": naive, "ceiling": ceiling}


def paced_passes(result: dict) -> bool:
    p99 = result["latency_ms"]["p99"]
    return result["dropped_total"] == 0 and p99 is not None and p99 < P99_BUDGET_MS


class Runs:
    """Measures each distinct configuration once per benchmark run (scaling reuses the headline)."""

    def __init__(self, duration_s: float, warmup_s: float, overrides: dict):
        self.duration_s, self.warmup_s, self.overrides = duration_s, warmup_s, overrides
        self._done: dict[tuple, dict] = {}

    def get(self, streams: int, paced: bool, fps: float | None = None) -> dict:
        key = (streams, paced, fps)
        if key not in self._done:
            spec = RunSpec(streams=streams, paced=paced, fps=fps, duration_s=self.duration_s, warmup_s=self.warmup_s)
            self._done[key] = measure(spec, self.overrides)
        return self._done[key]


def run_paced_search(runs: Runs, max_streams: int) -> dict:
    """N = 1, 2, ... live streams at 15 fps until one fails (drops, or p99 over budget)."""
    results = []
    for n in range(1, max_streams + 1):
        result = dict(runs.get(n, True, PACED_FPS))
        result["passes"] = paced_passes(result)
        results.append(result)
        if not result["passes"]:
            break
    passing = [r["streams"] for r in results if r["passes"]]
    return {"fps_per_stream": PACED_FPS, "p99_budget_ms": P99_BUDGET_MS,
            "rule": "no frame dropped and p99 capture-to-publish latency under the budget",
            "max_streams": max(passing) if passing else 0,
            "searched_up_to": results[-1]["streams"] if results else 0, "runs": results}


def run_scaling(runs: Runs, counts: list[int]) -> dict:
    return {"streams": counts, "unpaced": [runs.get(n, False) for n in counts],
            "live_29_97fps": [runs.get(n, True) for n in counts]}


def parse_overrides(items: list[str]) -> dict:
    """``section.key=value`` pairs (values parsed as YAML) into config overrides."""
    import yaml

    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not section or not name:
            raise ValueError(f"--set takes section.key=value, got {item!r}")
        overrides.setdefault(section, {})[name] = yaml.safe_load(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4, help="streams of the headline comparison (default 4)")
    parser.add_argument("--duration", type=float, help="seconds measured per configuration (default 20; quick 2)")
    parser.add_argument("--plot", type=Path, help="write throughput and latency against streams to this PNG")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a service setting for every run, e.g. --set inference.max_wait_ms=0")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated parts to run, of {', '.join(SECTIONS)} (default: all); "
                             "'headline' includes the baselines")
    args = parser.parse_args(argv)
    require_bench("pipeline", "fervid.benchmarks.pipeline")  # CPU and memory of the service's processes
    sections = [part.strip() for part in args.sections.split(",") if part.strip()]
    if not sections or set(sections) - set(SECTIONS):
        parser.error(f"--sections takes a comma-separated list of {', '.join(SECTIONS)}, got {args.sections!r}")
    quick = args.quick
    duration = args.duration or (2.0 if quick else 20.0)
    warmup = 1.0 if quick else 5.0
    streams = 1 if quick else args.streams
    scaling_counts = [1] if quick else [1, 2, 4, 8]
    if streams < 1:
        parser.error("--streams must be at least 1")
    try:
        overrides = parse_overrides(args.set)
        service_config(RunSpec(streams=1, paced=False), overrides)  # a bad setting fails here, in one line
    except (ValueError, FervidError) as exc:
        parser.error(str(exc))
    started = time.monotonic()

    import ray

    from fervid.services.service import connect

    # The baselines run before Ray starts, so that nothing else runs beside them.
    baselines = run_baselines(duration, overrides) if "headline" in sections else None
    pipeline = paced = scaling = None
    connect(None, num_cpus=os.cpu_count())
    try:
        runs = Runs(duration, warmup, overrides)
        if "headline" in sections:
            log(f"pipeline: {streams} unpaced streams ...")
            pipeline = runs.get(streams, False)
        if "paced" in sections:
            log(f"paced search at {PACED_FPS:.0f} fps per stream ...")
            paced = run_paced_search(runs, 1 if quick else 8)
        if "scaling" in sections:
            log("scaling ...")
            scaling = run_scaling(runs, scaling_counts)
    finally:
        ray.shutdown()
    result = {
        "benchmark": "pipeline", "machine": machine_info(),
        "parameters": {"streams": streams, "duration_s": duration, "warmup_s": warmup, "quick": quick,
                       "sections": sections, "clip": SAMPLE_CLIP.name,
                       "detector": vars(detector_params(overrides)), "overrides": overrides},
        "baselines": baselines,
        "pipeline": pipeline,
        "ratios": headline_ratios(pipeline, baselines),
        "paced": paced,
        "scaling": scaling,
        "wall_s": round(time.monotonic() - started, 1),
    }
    if args.plot and scaling and baselines and paced:
        plot(result, args.plot)
    elif args.plot:
        log("no plot: it needs every section")
    emit(result, args, summary)
    return 0


def headline_ratios(pipeline: dict | None, baselines: dict | None) -> dict | None:
    """Pipeline throughput over each baseline's, and whether the ceiling goal is met."""
    if pipeline is None or baselines is None:
        return None
    over_ceiling = ratio(pipeline["frames_per_s"], baselines["ceiling"]["frames_per_s"])
    return {"pipeline_over_naive": ratio(pipeline["frames_per_s"], baselines["naive"]["frames_per_s"]),
            "pipeline_over_ceiling": over_ceiling, "goal_over_ceiling": CEILING_GOAL,
            "goal_met": over_ceiling is not None and over_ceiling >= CEILING_GOAL}


def summary(result: dict) -> str:
    b, p, r = result["baselines"], result["pipeline"], result["ratios"]
    lines = []
    if p is not None:
        lines.append(f"{'':28} {'frames/s':>9} {'faces/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
        for label, row in (("naive loop", b["naive"]), (f"ceiling ({b['ceiling']['processes']} procs)", b["ceiling"]),
                           (f"pipeline ({p['streams']} streams)", p)):
            lines.append(f"{label:28} {row['frames_per_s']:9.2f} {row['faces_per_s']:8.2f} "
                         f"{row['latency_ms']['p50'] or 0:7.1f} {row['latency_ms']['p99'] or 0:7.1f}")
        lines.append(f"pipeline/naive {r['pipeline_over_naive']}, pipeline/ceiling {r['pipeline_over_ceiling']} "
                     f"(goal {r['goal_over_ceiling']})")
    if result["paced"] is not None:
        paced = result["paced"]
        lines.append(f"paced {paced['fps_per_stream']:.0f} fps: up to {paced['max_streams']} streams "
                     f"without drops and p99 < {paced['p99_budget_ms']:.0f} ms")
    for mode in ("unpaced", "live_29_97fps") if result["scaling"] is not None else ():
        cells = ", ".join(f"{run['streams']}: {run['frames_per_s']:.1f} fps/p99 {run['latency_ms']['p99']} ms/"
                          f"{run['dropped_total']} dropped" for run in result["scaling"][mode])
        lines.append(f"scaling {mode}: {cells}")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Throughput (with naive and ceiling) and p99 latency against the number of streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = result["scaling"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, label, marker in (("unpaced", "unpaced files", "o"), ("live_29_97fps", "live, 29.97 fps each", "s")):
        runs = scaling[mode]
        left.plot([r["streams"] for r in runs], [r["frames_per_s"] for r in runs], marker=marker, label=label)
        right.plot([r["streams"] for r in runs], [r["latency_ms"]["p99"] for r in runs], marker=marker, label=label)
        for run in runs:
            if run["dropped_total"]:
                left.annotate(f"{100 * run['drop_fraction']:.0f}% dropped", (run["streams"], run["frames_per_s"]),
                              textcoords="offset points", xytext=(0, -14), ha="center", fontsize=7)
    for name, style in (("ceiling", "--"), ("naive", ":")):
        left.axhline(result["baselines"][name]["frames_per_s"], linestyle=style, color="grey",
                     label=f"{name} ({result['baselines'][name]['frames_per_s']:.1f})")
    right.axhline(result["paced"]["p99_budget_ms"], linestyle="--", color="grey", label="150 ms budget")
    left.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    for axis, title, unit in ((left, "Throughput, all streams", "frames/s"), (right, "Latency p99", "ms")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(scaling["streams"], [str(n) for n in scaling["streams"]])
        axis.set_xlabel("streams")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(f"fervid pipeline on {result['machine']['cpu_count']} cores (sample clip, 640x360)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
