"""Is the classifier faster with TensorFlow's oneDNN kernels on or off? An alternated A/B of benchmarks.inference.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads, so each setting runs in its own process:
``python -m fervid.benchmarks.inference --json`` with the variable at 0 (off) or 1 (on), in pairs ordered
off-on, on-off, off-on... so that drift in the machine's load hits both settings alike. The result holds
the median faces/s of every batch size under each setting, their ratio (on / off), and the verdict of
the rule fixed before measuring: **serving keeps oneDNN on only when it is at least 5% faster at batch
sizes 1 and 4**, the padded sizes that carry nearly all live traffic (docs/performance.md); otherwise
serving turns it off, as training does (models/backend_env.py).

    python -m fervid.benchmarks.onednn_ab [--pairs N] [--quick] [--json] [--out FILE]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from fervid.benchmarks import common

SETTINGS = {"off": "0", "on": "1"}
LIVE_BATCHES: tuple[int, ...] = (1, 4)
"""The batch sizes live traffic uses (a batch holds 1.0 to 1.3 faces on average in the service)."""
MIN_GAIN = 1.05
RULE = (f"serving keeps oneDNN on only when its median faces/s with oneDNN on is at least {MIN_GAIN} times "
        f"that with it off at every batch size in {list(LIVE_BATCHES)}; otherwise serving turns oneDNN off")
ONEDNN_BANNER = "oneDNN custom operations are on"
"""What TensorFlow prints at start-up when the kernels are on (whatever the log level)."""


def order(pairs: int) -> list[str]:
    """Setting of each run: off, on, on, off, off, on... (each pair reverses the one before)."""
    runs: list[str] = []
    for number in range(pairs):
        runs += ["off", "on"] if number % 2 == 0 else ["on", "off"]
    return runs


def run_inference(setting: str, quick: bool) -> dict:
    """One benchmarks.inference run in a process whose TensorFlow starts with oneDNN ``setting``."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": SETTINGS[setting]}
    command = [sys.executable, "-m", "fervid.benchmarks.inference", "--json", *(["--quick"] if quick else [])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.inference with oneDNN {setting} failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout)
    result["onednn_banner_seen"] = ONEDNN_BANNER in done.stderr
    return result


def summarise(runs: Sequence[tuple[str, dict]]) -> dict:
    """Median faces/s per batch size and setting, and the on/off ratio of those medians."""
    sizes = [entry["batch_size"] for entry in runs[0][1]["batches"]]
    medians: dict[str, dict[int, float]] = {}
    for setting in SETTINGS:
        results = [result for name, result in runs if name == setting]
        medians[setting] = {size: common.median(entry["faces_per_s"] for result in results
                                                for entry in result["batches"] if entry["batch_size"] == size)
                            for size in sizes}
        medians[setting]["baseline"] = common.median(result["baseline"]["faces_per_s"] for result in results)
    return {
        "batches": [{"batch_size": size, "faces_per_s_off": round(medians["off"][size], 2),
                     "faces_per_s_on": round(medians["on"][size], 2),
                     "on_over_off": common.ratio(medians["on"][size], medians["off"][size])} for size in sizes],
        "baseline_per_face_predict": {"faces_per_s_off": round(medians["off"]["baseline"], 2),
                                      "faces_per_s_on": round(medians["on"]["baseline"], 2),
                                      "on_over_off": common.ratio(medians["on"]["baseline"],
                                                                  medians["off"]["baseline"])},
    }


def verdict(batches: Sequence[dict]) -> str:
    """``"on"`` or ``"off"`` for serving, by :data:`RULE`."""
    ratios = {entry["batch_size"]: entry["on_over_off"] for entry in batches}
    return "on" if all(ratios[size] is not None and ratios[size] >= MIN_GAIN for size in LIVE_BATCHES) else "off"


def run(pairs: int, quick: bool) -> dict:
    started = time.perf_counter()
    load_before = os.getloadavg()
    runs = []
    for number, setting in enumerate(order(pairs), 1):
        common.log(f"run {number}/{2 * pairs}: benchmarks.inference with TF_ENABLE_ONEDNN_OPTS={SETTINGS[setting]}")
        runs.append((setting, run_inference(setting, quick)))
    summary = summarise(runs)
    return {
        "benchmark": "onednn_ab",
        "question": "faces/s of EmotionClassifier.predict with TensorFlow's oneDNN kernels on against off",
        "machine": runs[0][1]["machine"],  # from a run: this process never loads TensorFlow
        "parameters": {"pairs": pairs, "quick": quick, "order": [setting for setting, _ in runs],
                       "inference_rounds_per_run": runs[0][1]["parameters"]["rounds"]},
        # 1-minute load average before and after: other work on a shared box blurs small differences
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "runs": [{"onednn": setting, "banner_seen": result["onednn_banner_seen"], "backend": result["backend"],
                  "faces_per_s": {entry["batch_size"]: entry["faces_per_s"] for entry in result["batches"]},
                  "baseline_faces_per_s": result["baseline"]["faces_per_s"], "elapsed_s": result["elapsed_s"]}
                 for setting, result in runs],
        **summary,
        "rule": RULE,
        "serving_verdict": verdict(summary["batches"]),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def text(result: dict) -> str:
    lines = [f"oneDNN A/B ({result['parameters']['pairs']} pairs, order {' '.join(result['parameters']['order'])})",
             f"{'batch':>6} {'off f/s':>9} {'on f/s':>9} {'on/off':>7}"]
    for entry in result["batches"]:
        lines.append(f"{entry['batch_size']:>6} {entry['faces_per_s_off']:>9.1f} {entry['faces_per_s_on']:>9.1f} "
                     f"{entry['on_over_off']:>7.3f}")
    lines.append(f"serving: oneDNN {result['serving_verdict']} ({result['rule']})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, help="off/on pairs of runs (default 3; 1 with --quick)")
    args = parser.parse_args(argv)
    pairs = args.pairs or (1 if args.quick else 3)
    if pairs < 1:
        parser.error("--pairs must be at least 1")
    common.emit(run(pairs, args.quick), args, text)


if __name__ == "__main__":
    main()
