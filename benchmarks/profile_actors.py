"""Where each actor of a running service spends its CPU: py-spy on capture, detector, inference, publisher.

The pipeline benchmark says how far the service is from the per-core ceiling; this says why. It
starts the service on N unpaced streams of the sample clip (as ``benchmarks.pipeline`` does),
lets it warm up, samples one actor of each kind with ``py-spy record --nonblocking`` (the actor is
never paused) for a few seconds, and reports each kind's busy share of one core and its
functions by share of samples (self time: where the CPU actually was). Idle threads are not
sampled, so a share is a share of the actor's busy time.

Needs ``py-spy`` (``pip install py-spy``) and permission to trace the actors' processes (root,
or ``kernel.yama.ptrace_scope=0``).

    python -m fervid.benchmarks.profile_actors [--streams 4] [--seconds 15] [--json] [--out FILE]
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fervid.benchmarks.common import emit, log, machine_info, make_parser, require_bench
from fervid.benchmarks.service_run import RunSpec, service_config

KINDS = ("capture", "detector", "inference", "publisher")
RATE_HZ = 50


def py_spy() -> str:
    """The py-spy executable (beside this Python first, then on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if not found:
        raise SystemExit("fervid.benchmarks.profile_actors: py-spy is not installed (pip install py-spy)")
    return found


def self_time(collapsed: str, top: int = 8) -> tuple[int, list[dict]]:
    """Samples in py-spy's collapsed (``raw``) output, and the functions with the most self time."""
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        leaf = stack.split(";")[-1]
        leaves[re.sub(r" \(.*\)$", "", leaf).strip() or "(native)"] += int(count)
    shares = [{"function": name, "share": round(n / total, 3)} for name, n in leaves.most_common(top)] if total else []
    return total, shares


def actor_pids(controller) -> dict[str, int]:
    import ray

    from fervid.services.runtime import NAMESPACE

    status = ray.get(controller.status.remote(), timeout=30)
    pids = {"capture": status["streams"][0]["pid"]}
    for kind, name in (("detector", "detector:0"), ("inference", "inference:0"), ("publisher", "publisher")):
        pids[kind] = ray.get(ray.get_actor(name, namespace=NAMESPACE).pid.remote(), timeout=30)
    return pids


def profile(pids: dict[str, int], seconds: float, folder: Path) -> dict:
    executable = py_spy()
    runs = {kind: subprocess.Popen([executable, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(RATE_HZ),
                                    "--nonblocking", "-f", "raw", "-o", str(folder / f"{kind}.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for kind, pid in pids.items()}
    result = {}
    for kind, run in runs.items():
        _, error = run.communicate(timeout=seconds + 60)
        path = folder / f"{kind}.txt"
        if run.returncode != 0 or not path.is_file():
            lines = (error or "").strip().splitlines()
            raise SystemExit(f"fervid.benchmarks.profile_actors: py-spy failed on the {kind} actor: "
                             f"{lines[-1] if lines else 'exit ' + str(run.returncode)}")
        samples, top = self_time(path.read_text())
        result[kind] = {"pid": pids[kind], "samples": samples,
                        "busy_share_of_a_core": round(samples / (seconds * RATE_HZ), 3), "self_time": top}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.streams, args.seconds = 1, 3.0
    require_bench("profile_actors", "fervid.benchmarks.profile_actors")
    py_spy()  # fail before starting anything
    import ray

    from fervid.services.service import connect, start_service, stop_service

    connect(None, num_cpus=os.cpu_count())
    config = service_config(RunSpec(streams=args.streams, paced=False))
    controller = start_service(config)
    try:
        time.sleep(3 if args.quick else 12)  # model warm, pipeline full
        log(f"sampling {', '.join(KINDS)} for {args.seconds:.0f} s ...")
        with tempfile.TemporaryDirectory() as folder:
            actors = profile(actor_pids(controller), args.seconds, Path(folder))
    finally:
        stop_service(controller)
        ray.shutdown()
    result = {"benchmark": "profile_actors", "machine": machine_info(), "streams": args.streams,
              "seconds": args.seconds, "rate_hz": RATE_HZ, "actors": actors}
    emit(result, args, summary)
    return 0


def summary(result: dict) -> str:
    lines = []
    for kind, info in result["actors"].items():
        lines.append(f"{kind} (busy {100 * info['busy_share_of_a_core']:.0f}% of a core):")
        lines += [f"  {100 * row['share']:5.1f}%  {row['function']}" for row in info["self_time"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
