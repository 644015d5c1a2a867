"""Train several candidate recipes side by side on one GPU machine within a fixed time budget.

Why this exists: a lent GPU machine (``KERAS_BACKEND=jax``, no TensorFlow, no Ray, no network) is
held for minutes, not hours, and takes at most 64 MiB of files in. So:

* ``pack`` (here) turns the Training rows of the FER2013 CSV into a lossless WebP mosaic and a
  label file (46 MB instead of 85 MB of gzip'd CSV); ``unpack`` (there) writes the same rows back
  as a CSV, in the same order, so FER+ votes still align by row position.
* ``run`` (there) first trains every candidate for 3 epochs side by side (``--probe-epochs``) to
  measure its start-up and epoch time under the real contention, then gives each the number of
  epochs that fits the remaining budget, so every cosine schedule runs to its end instead of being
  cut (the shipped model's was cut at epoch 49 of 60). Each candidate is ``fervid.training.trainer.train``
  with a ``TrainConfig`` from ``candidates.json``: the same code and recipe as ``fervid train``.
* What comes back: each candidate's ``best.keras`` and a tarball of the logs and histories.

Not part of the installed package; docs/model card "Reproduce" quotes the equivalent ``fervid train``.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

TILES_PER_ROW = 100
"""Mosaic width in 48 px tiles (4,800 px; WebP allows 16,383 in each direction)."""
FACE = 48
HERE = Path(__file__).resolve().parent


def pack(csv_gz: Path, out: Path) -> None:
    """Write the Training rows of ``csv_gz`` as ``out``.webp (mosaic) and ``out``.labels.npy."""
    import cv2

    from fervid.training.data import load_fer2013

    data = load_fer2013(csv_gz, usage="Training")
    if not np.array_equal(data.rows, np.arange(len(data))):
        raise SystemExit("the Training rows are not the file's first rows: FER+ alignment would break")
    n = len(data)
    rows = math.ceil(n / TILES_PER_ROW)
    tiles = np.zeros((rows * TILES_PER_ROW, FACE, FACE), np.uint8)
    tiles[:n] = data.pixels
    mosaic = tiles.reshape(rows, TILES_PER_ROW, FACE, FACE).transpose(0, 2, 1, 3).reshape(rows * FACE, -1)
    ok, encoded = cv2.imencode(".webp", mosaic, [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101: lossless
    if not ok or not np.array_equal(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE), mosaic):
        raise SystemExit("WebP round trip was not lossless")
    out.with_suffix(".webp").write_bytes(encoded.tobytes())
    np.save(out.with_suffix(".labels.npy"), data.labels.astype(np.uint8))
    print(f"packed {n} Training rows: {len(encoded) / 1e6:.1f} MB", file=sys.stderr)


def unpack(packed: Path, csv_out: Path) -> int:
    """Write the packed rows back as a FER2013 CSV (emotion, pixels, Usage); return the row count."""
    import cv2

    labels = np.load(packed.with_suffix(".labels.npy"))
    mosaic = cv2.imdecode(np.fromfile(packed.with_suffix(".webp"), np.uint8), cv2.IMREAD_GRAYSCALE)
    tiles = mosaic.reshape(-1, FACE, TILES_PER_ROW, FACE).transpose(0, 2, 1, 3).reshape(-1, FACE, FACE)
    with open(csv_out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for label, tile in zip(labels, tiles[:len(labels)]):
            writer.writerow([int(label), " ".join(map(str, tile.ravel().tolist())), "Training"])
    return len(labels)


def recipe(name: str, candidates: dict, data: Path, ferplus: Path | None, out: Path, epochs: int,
           limit: int | None = None) -> dict:
    """The TrainConfig values of candidate ``name`` (``limit``: a smoke test on a few rows)."""
    values = {**candidates["common"], **candidates["candidates"][name]}
    return {**values, "data": str(data), "ferplus": str(ferplus) if ferplus else None, "out": str(out),
            "epochs": epochs, "resume": False, "limit": limit}


def train_one(config_json: str) -> None:
    """One candidate in this process (what the ``run`` step starts once per candidate)."""
    from fervid.training.config import TrainConfig
    from fervid.training.trainer import train

    train(TrainConfig.parse(json.loads(config_json)), log=lambda m: print(m, flush=True))


def completed_epochs(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoints" / "state.json").read_text())["completed_epochs"])
    except (OSError, ValueError, KeyError):
        return 0


def launch(name: str, values: dict, logs: Path) -> subprocess.Popen:
    log = open(logs / f"{name}.log", "a")
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "train-one", json.dumps(values)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(processes: dict[str, subprocess.Popen]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def probe(names, candidates, data, ferplus, work: Path, logs: Path, epochs: int, limit_s: float,
          limit: int | None) -> dict:
    """Start-up and epoch seconds of each candidate, all running side by side as in the real run."""
    outs = {n: work / "probe" / n for n in names}
    started = time.monotonic()
    procs = {n: launch(f"probe-{n}", recipe(n, candidates, data, ferplus, outs[n], epochs, limit), logs) for n in names}
    seen: dict[str, dict[int, float]] = {n: {} for n in names}
    while time.monotonic() - started < limit_s:
        for n in names:
            done = completed_epochs(outs[n])
            if done and done not in seen[n]:
                seen[n][done] = time.monotonic() - started
        if all(len(seen[n]) >= epochs or procs[n].poll() is not None for n in names):
            break
        time.sleep(0.25)
    stop(procs)
    timing = {}
    for n in names:
        marks = seen[n]
        if len(marks) >= 2:
            first, last = min(marks), max(marks)
            epoch_s = (marks[last] - marks[first]) / (last - first)
            timing[n] = {"epoch_s": round(epoch_s, 2), "startup_s": round(marks[first] - first * epoch_s, 2)}
        else:  # too slow to measure within the limit: plan as if an epoch took a quarter of it
            print(f"probe of {n} finished {len(marks)} epoch(s) in {limit_s:.0f} s; see {logs}/probe-{n}.log",
                  flush=True)
            timing[n] = {"epoch_s": limit_s / 4, "startup_s": limit_s, "measured": False}
    return timing


def run(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    deadline = t0 + args.budget_s
    candidates = json.loads(args.candidates.read_text())
    names = args.only or list(candidates["candidates"])
    work, out = args.work, args.out
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    data = work / "fer2013_training.csv"
    rows = unpack(args.packed, data)
    print(f"unpacked {rows} rows in {time.monotonic() - t0:.1f} s", flush=True)
    if args.epochs:  # measured before: no probe
        timing = {n: {"epoch_s": 0.0, "startup_s": 0.0, "measured": False} for n in names}
    else:
        timing = probe(names, candidates, data, args.ferplus, work, logs, args.probe_epochs, args.probe_limit_s,
                       args.limit)
    left = deadline - time.monotonic() - args.margin_s
    plan = {n: args.epochs or max(1, min(args.max_epochs, int((left - t["startup_s"]) / (t["epoch_s"] * args.slack))))
            for n, t in timing.items()}
    print(f"probe done at {time.monotonic() - t0:.0f} s: {json.dumps(timing)}; epochs {json.dumps(plan)}", flush=True)
    outs = {n: work / "runs" / n for n in names}
    procs = {n: launch(n, recipe(n, candidates, data, args.ferplus, outs[n], plan[n], args.limit), logs) for n in names}
    while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
        time.sleep(1)
    cut = [n for n, p in procs.items() if p.poll() is None]
    stop(procs)
    summary = {"budget_s": args.budget_s, "probe": timing, "planned_epochs": plan, "cut_by_deadline": cut,
               "completed_epochs": {n: completed_epochs(outs[n]) for n in names},
               "best_val_accuracy": {}, "wall_s": round(time.monotonic() - t0, 1),
               "backend": os.environ.get("KERAS_BACKEND"), "recipes": {
                   n: recipe(n, candidates, Path("DATA"), Path("FERPLUS") if args.ferplus else None,
                             Path(f"runs/{n}"), plan[n]) for n in names}}
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        tar.add(logs, arcname="logs")
        for n in names:
            for name in ("history.csv", "config.json"):
                if (outs[n] / name).is_file():
                    tar.add(outs[n] / name, arcname=f"runs/{n}/{name}")
    for n in names:
        state = outs[n] / "checkpoints" / "state.json"
        if state.is_file():
            summary["best_val_accuracy"][n] = json.loads(state.read_text())["best_score"]
        if (outs[n] / "best.keras").is_file():
            (out / f"{n}.keras").write_bytes((outs[n] / "best.keras").read_bytes())
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("planned_epochs", "completed_epochs", "best_val_accuracy",
                                               "cut_by_deadline", "wall_s")}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pack")
    p.add_argument("csv", type=Path)
    p.add_argument("out", type=Path, help="path without suffix: OUT.webp and OUT.labels.npy are written")
    p = sub.add_parser("train-one")
    p.add_argument("config_json")
    p = sub.add_parser("run")
    p.add_argument("--packed", type=Path, required=True, help="the path given to pack")
    p.add_argument("--ferplus", type=Path)
    p.add_argument("--candidates", type=Path, default=HERE / "candidates.json")
    p.add_argument("--only", nargs="+", help="train only these candidates")
    p.add_argument("--work", type=Path, default=Path("/tmp/fervid-candidates"))
    p.add_argument("--out", type=Path, required=True, help="folder for the best.keras files and logs")
    p.add_argument("--budget-s", type=float, required=True, help="seconds from start to the last epoch")
    p.add_argument("--epochs", type=int, help="train every candidate this many epochs (no probe)")
    p.add_argument("--probe-epochs", type=int, default=3)
    p.add_argument("--probe-limit-s", type=float, default=150)
    p.add_argument("--margin-s", type=float, default=15, help="kept free at the end for saving")
    p.add_argument("--slack", type=float, default=1.1, help="epoch time is multiplied by this when planning")
    p.add_argument("--max-epochs", type=int, default=300)
    p.add_argument("--limit", type=int, help="train on this many rows only (a smoke test of the script)")
    args = parser.parse_args()
    if args.step == "pack":
        pack(args.csv, args.out)
    elif args.step == "train-one":
        train_one(args.config_json)
    else:
        run(args)


if __name__ == "__main__":
    main()
