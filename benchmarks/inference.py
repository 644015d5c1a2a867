"""How many faces per second does batched classification deliver, and from what batch size on?

The service classifies faces with ``EmotionClassifier.predict``: one compiled
``predict_on_batch`` call per batch, padded to a few fixed sizes. Typical FER libraries instead
call ``model.predict(x, verbose=0)`` once per face on a 1x48x48x1 array, which pays Keras's
per-call overhead (data adapter, callbacks, graph dispatch) for every face. This benchmark
measures the faces/s of ``predict`` (``flip_average=False``, as the service runs it) at batch
sizes 1..256 on real FER2013 crops, against that per-face baseline measured in the same run, and
reports:

* ``speedup_at_default_batch``: faces/s at the service's default batch
  (``InferenceConfig().max_batch``) over the baseline's faces/s;
* ``saturation_batch``: the smallest batch size within 10% of the best measured throughput,
  i.e. where making batches larger stops paying.

Sizes that are not one of ``BATCH_BUCKETS`` are padded up by ``predict`` (3 -> 4, 100 -> 128),
exactly as live batches are, so their throughput includes the padding waste. All sizes and the
baseline are timed in interleaved rounds, so load from other work on a shared machine biases
none of them more than the others; figures are medians of seconds per call.

On the TensorFlow backend ``predict`` runs a frozen graph (:mod:`fervid.models.inference_call`);
the same model through Keras' ``predict_on_batch``, the call before it, is timed at every batch
size in the same rounds and reported as ``reference_call`` with ``call_speedup`` per size, so the
gain of the frozen graph is measured, not assumed, on every machine the benchmark runs on.

``--compare MODEL...`` times other model files (an ensemble, a previous model, a candidate) at the
same batch sizes in the same interleaved rounds and reports each one's faces/s and the shipped
model's faces/s over it per batch size: the speed side of choosing between models, measured so
that a noisy minute on a shared machine cannot favour one of them.

    python -m fervid.benchmarks.inference [--json] [--quick] [--out FILE] [--plot PNG] [--crops CSV]
                                          [--compare MODEL...]

It uses Keras only (backend-specific calls only to list devices, guarded), so it runs under ``KERAS_BACKEND=jax`` as well.
"""
from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fervid.benchmarks import common

BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
QUICK_BATCH_SIZES: tuple[int, ...] = (1, 4, 64)
SAMPLE_CSV: Path | None = common.checkout_default("tests", "data", "fer2013_sample.csv.gz")
"""The default crops: FER2013 rows of the test data, in a checkout only (``--crops`` elsewhere)."""
SATURATION_TOLERANCE: float = 0.10
"""A batch size within this fraction of the best throughput counts as saturated."""
BASELINE_NAME: str = "per-face model.predict"


@dataclass(frozen=True)
class Settings:
    """How much to time. Timing goes in ``rounds``; each round times every batch size and the
    baseline in turn, so a slow minute on a shared machine hits all of them alike.
    Per round, a size is called for at least ``seconds_per_round`` (at least once, at most
    ``max_calls_per_round`` times) and the baseline ``baseline_calls_per_round`` times.
    """

    batch_sizes: tuple[int, ...]
    rounds: int
    seconds_per_round: float
    max_calls_per_round: int
    baseline_calls_per_round: int

    @classmethod
    def for_run(cls, quick: bool, default_batch: int) -> "Settings":
        sizes = tuple(sorted(set(QUICK_BATCH_SIZES if quick else BATCH_SIZES) | {default_batch}))
        if quick:
            return cls(sizes, rounds=3, seconds_per_round=0.0, max_calls_per_round=1, baseline_calls_per_round=2)
        return cls(sizes, rounds=8, seconds_per_round=0.5, max_calls_per_round=50, baseline_calls_per_round=4)


def default_batch() -> int:
    """The service's default batch size, read from its configuration rather than repeated here."""
    from fervid.services.config import InferenceConfig

    return int(InferenceConfig().max_batch)


def load_crops(path: Path, count: int) -> np.ndarray:
    """``count`` real 48x48 uint8 face crops from a FER2013-format CSV, repeated if it is short."""
    from fervid.errors import FervidError
    from fervid.training.data import load_fer2013

    try:
        pixels = load_fer2013(path).pixels
    except FervidError as exc:
        common.log(f"fervid.benchmarks.inference: error: --crops {path}: {exc}")
        raise SystemExit(2) from None
    repeats = -(-count // len(pixels))
    return np.concatenate([pixels] * repeats)[:count]


def display_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    path = path.resolve()
    inside = common.IN_CHECKOUT and path.is_relative_to(common.REPO_ROOT)
    return str(path.relative_to(common.REPO_ROOT)) if inside else str(path)


def backend_devices(backend: str) -> list[str] | None:
    """The devices the Keras backend computes on, as strings; ``None`` when it cannot say."""
    try:
        if backend == "jax":
            import jax

            return [str(device) for device in jax.devices()]
        if backend == "tensorflow":
            import tensorflow as tf

            return [device.name for device in tf.config.list_logical_devices()]
        if backend == "torch":
            import torch

            return ["cuda:0" if torch.cuda.is_available() else "cpu"]
    except Exception:
        pass
    return None


def time_for(function: Callable[[], object], seconds: float, max_calls: int) -> list[float]:
    """Seconds per call of ``function``, called once and then until ``seconds`` or ``max_calls`` are spent."""
    durations = common.time_repeats(function, 1)
    while len(durations) < max_calls and sum(durations) < seconds:
        durations += common.time_repeats(function, 1)
    return durations


def interleaved_timings(functions: dict[object, Callable[[], list[float]]], rounds: int) -> dict[object, list[float]]:
    """Run each timing function once per round, in turn, and pool the seconds each returns."""
    durations: dict[object, list[float]] = {key: [] for key in functions}
    for number in range(rounds):
        for key, timing in functions.items():
            durations[key] += timing()
        common.log(f"round {number + 1}/{rounds} done")
    return durations


def throughput(faces: int, seconds: float) -> dict:
    """Median seconds per call of ``faces`` faces as faces/s and ms per face."""
    return {"median_s_per_call": round(seconds, 6), "faces_per_s": round(faces / seconds, 2),
            "ms_per_face": round(1000.0 * seconds / faces, 4)}


def batch_timing(classifier, crops: np.ndarray, size: int, settings: Settings) -> Callable[[], list[float]]:
    """Warm ``predict`` up at ``size`` crops (the first call traces); return one round's timing of it."""
    batch = crops[:size]
    classifier.predict(batch)
    return lambda: time_for(lambda: classifier.predict(batch), settings.seconds_per_round,
                            settings.max_calls_per_round)


def baseline_timing(model, crops: np.ndarray, settings: Settings) -> Callable[[], list[float]]:
    """Warm up per-face ``model.predict(x, verbose=0)``; return one round's timing, a new face each call."""
    from fervid.models.preprocessing import normalise

    faces = itertools.cycle([normalise(crop) for crop in crops])
    for _ in range(2):  # the first call builds and traces the predict function
        model.predict(next(faces), verbose=0)
    return lambda: common.time_repeats(lambda: model.predict(next(faces), verbose=0),
                                       settings.baseline_calls_per_round)


def batch_entry(size: int, durations: Sequence[float]) -> dict:
    from fervid.models.classifier import bucket_for

    return {"batch_size": size, "padded_to": bucket_for(size), "calls": len(durations),
            **throughput(size, common.median(durations))}


def baseline_entry(durations: Sequence[float]) -> dict:
    return {"name": BASELINE_NAME, "calls": len(durations),
            "description": "one Keras model.predict(x, verbose=0) call per face on a 1x48x48x1 "
                           "float32 array (normalised like the service's input), as typical FER "
                           "libraries classify faces",
            **throughput(1, common.median(durations))}


def saturation_batch(faces_per_s: dict[int, float], tolerance: float = SATURATION_TOLERANCE) -> int:
    """The smallest batch size whose throughput is within ``tolerance`` of the best one."""
    if not faces_per_s:
        raise ValueError("no throughputs measured")
    best = max(faces_per_s.values())
    return min(size for size, rate in faces_per_s.items() if rate >= (1.0 - tolerance) * best)


def add_speedups(batches: Sequence[dict], baseline: dict) -> None:
    """Give each batch entry its ``speedup`` over the baseline, from the reported faces/s."""
    for entry in batches:
        entry["speedup"] = common.ratio(entry["faces_per_s"], baseline["faces_per_s"])


def load_compared(paths: Sequence[Path]) -> dict[Path, object]:
    """Each ``--compare`` model, loaded with every check of ``EmotionClassifier.load`` (one-line errors)."""
    from fervid.errors import FervidError
    from fervid.models.classifier import EmotionClassifier

    loaded = {}
    for path in paths:
        try:
            loaded[path] = EmotionClassifier.load(path, flip_average=False)
        except FervidError as exc:
            common.log(f"fervid.benchmarks.inference: error: --compare: {exc}")
            raise SystemExit(2) from None
    return loaded


def compared_entry(path: Path, entries: Sequence[dict], shipped: dict[int, float]) -> dict:
    """One compared model: its faces/s per batch size and the shipped model's faces/s over them."""
    for entry in entries:
        entry["shipped_over_this"] = common.ratio(shipped[entry["batch_size"]], entry["faces_per_s"])
    return {"model": display_path(path), "batches": list(entries)}


def reference_entry(entries: Sequence[dict], shipped: dict[int, float]) -> dict:
    """The same model through ``predict_on_batch``: its faces/s per size and the frozen graph's gain."""
    from fervid.models.inference_call import PREDICT_ON_BATCH

    for entry in entries:
        entry["call_speedup"] = common.ratio(shipped[entry["batch_size"]], entry["faces_per_s"])
    return {"call_path": PREDICT_ON_BATCH, "batches": list(entries)}


def run(settings: Settings, batch: int, quick: bool, crops_csv: Path, compare: Sequence[Path] = ()) -> dict:
    """Load the model(s), time every batch size and the baseline, and assemble the result."""
    started = time.perf_counter()
    crops = load_crops(crops_csv, max(settings.batch_sizes))  # a bad CSV fails before the model loads
    others = load_compared(compare)  # a missing or damaged file fails before Keras is imported
    import keras

    from fervid.models.classifier import BATCH_BUCKETS, EmotionClassifier
    from fervid.models.inference_call import PREDICT_ON_BATCH

    backend = keras.backend.backend()
    common.log(f"loading the classifier ({backend} backend)")
    classifier = EmotionClassifier.load(flip_average=False)
    reference = (None if classifier.call_path == PREDICT_ON_BATCH else
                 EmotionClassifier(classifier.model, False, classifier.path, call_path=PREDICT_ON_BATCH))
    common.log(f"warming up every batch size and the baseline (call path: {classifier.call_path})")
    timings: dict[object, Callable[[], list[float]]] = {
        size: batch_timing(classifier, crops, size, settings) for size in settings.batch_sizes}
    timings[BASELINE_NAME] = baseline_timing(classifier.model, crops, settings)
    if reference is not None:
        timings.update({(PREDICT_ON_BATCH, size): batch_timing(reference, crops, size, settings)
                        for size in settings.batch_sizes})
    for path, other in others.items():
        timings.update({(path, size): batch_timing(other, crops, size, settings) for size in settings.batch_sizes})
    durations = interleaved_timings(timings, settings.rounds)
    batches = [batch_entry(size, durations[size]) for size in settings.batch_sizes]
    baseline = baseline_entry(durations[BASELINE_NAME])
    for entry in batches:
        common.log(f"batch {entry['batch_size']:>4}: {entry['faces_per_s']:>9.1f} faces/s ({entry['calls']} calls)")
    common.log(f"baseline ({BASELINE_NAME}): {baseline['faces_per_s']:.1f} faces/s ({baseline['calls']} calls)")
    add_speedups(batches, baseline)
    rates = {entry["batch_size"]: entry["faces_per_s"] for entry in batches}
    best = max(rates, key=rates.get)
    compared = [compared_entry(path, [batch_entry(size, durations[(path, size)]) for size in settings.batch_sizes],
                               rates) for path in others]
    reference_call = None if reference is None else reference_entry(
        [batch_entry(size, durations[(PREDICT_ON_BATCH, size)]) for size in settings.batch_sizes], rates)
    return {
        "benchmark": "inference",
        "question": "faces/s of batched EmotionClassifier.predict vs one model.predict call per face",
        "backend": backend,
        "devices": backend_devices(backend),
        "machine": common.machine_info(),
        "parameters": {
            "quick": quick, "batch_sizes": list(settings.batch_sizes), "default_batch": batch,
            "default_batch_from": "fervid.services.config.InferenceConfig().max_batch",
            "flip_average": False, "batch_buckets": list(BATCH_BUCKETS),
            "rounds": settings.rounds, "seconds_per_round": settings.seconds_per_round,
            "max_calls_per_round": settings.max_calls_per_round,
            "baseline_calls_per_round": settings.baseline_calls_per_round,
            "saturation_tolerance": SATURATION_TOLERANCE, "crops": display_path(crops_csv),
            "model": display_path(Path(classifier.path)), "call_path": classifier.call_path,
        },
        "baseline": baseline,
        "batches": batches,
        "default_batch": batch,
        "speedup_at_default_batch": common.ratio(rates[batch], baseline["faces_per_s"]),
        "best_batch": best,
        "best_faces_per_s": rates[best],
        "saturation_batch": saturation_batch(rates),
        "compared": compared,
        "reference_call": reference_call,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def summary(result: dict) -> str:
    """A small table of the result for humans."""
    baseline = result["baseline"]
    lines = [f"Inference throughput ({result['backend']}, {result['machine'].get('processor')})",
             f"{'batch':>6} {'padded':>6} {'faces/s':>10} {'ms/face':>9} {'speedup':>8}"]
    for entry in result["batches"]:
        mark = "  <- default" if entry["batch_size"] == result["default_batch"] else ""
        lines.append(f"{entry['batch_size']:>6} {entry['padded_to']:>6} {entry['faces_per_s']:>10.1f} "
                     f"{entry['ms_per_face']:>9.3f} {entry['speedup']:>7.1f}x{mark}")
    lines += [f"baseline ({baseline['name']}): {baseline['faces_per_s']:.1f} faces/s, "
              f"{baseline['ms_per_face']:.2f} ms/face",
              f"speedup at default batch {result['default_batch']}: {result['speedup_at_default_batch']:.1f}x",
              f"saturation batch (within {SATURATION_TOLERANCE:.0%} of best): {result['saturation_batch']}"]
    if result.get("reference_call"):
        lines.append(f"{result['parameters']['call_path']} over predict_on_batch: " + ", ".join(
            f"batch {e['batch_size']} {e['call_speedup']:.2f}x" for e in result["reference_call"]["batches"]))
    for other in result.get("compared", []):
        lines.append(f"{other['model']}: " + ", ".join(
            f"batch {e['batch_size']} {e['faces_per_s']:.1f} faces/s (shipped {e['shipped_over_this']:.2f}x)"
            for e in other["batches"]))
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Faces/s against batch size (log2 x axis), with the per-face baseline and the default batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [entry["batch_size"] for entry in result["batches"]]
    rates = [entry["faces_per_s"] for entry in result["batches"]]
    default = result["default_batch"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(sizes, rates, marker="o", label="EmotionClassifier.predict (batched)")
    padded = [(size, rate) for size, rate, entry in zip(sizes, rates, result["batches"])
              if entry["padded_to"] != size]
    if padded:
        axes.plot(*zip(*padded), marker="o", markersize=9, markerfacecolor="white", linestyle="none",
                  color="tab:blue", label="padded up to the next bucket")
    axes.axhline(result["baseline"]["faces_per_s"], color="tab:red", linestyle="--",
                 label=f"baseline: {result['baseline']['name']}")
    if default in sizes:
        axes.plot([default], [rates[sizes.index(default)]], marker="*", markersize=16, color="tab:orange",
                  linestyle="none", label=f"default batch {default} ({result['speedup_at_default_batch']:.1f}x baseline)")
    axes.axvline(default, color="tab:orange", linestyle=":", linewidth=1)
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.set_xlabel("batch size (faces per predict call)")
    axes.set_ylabel("faces / s")
    axes.set_ylim(bottom=0)
    axes.set_title(f"Mini-Xception inference throughput ({result['backend']}, "
                   f"{result['machine'].get('cpu_count')} CPUs)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = common.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also plot faces/s vs batch size to this PNG")
    parser.add_argument("--crops", type=Path, metavar="CSV", default=SAMPLE_CSV,
                        help="FER2013-format CSV[.gz] whose faces are classified "
                             "(default: the checkout's tests/data/fer2013_sample.csv.gz)")
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="MODEL",
                        help="also time these .keras model files at the same batch sizes, interleaved")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    from fervid.models.backend_env import configure_tensorflow

    args = parse_args(argv)
    if args.plot is not None:
        common.require_bench("inference", "--plot")
    configure_tensorflow()  # as the service's inference actor does, before Keras is imported
    crops_csv = common.require_input("inference", "--crops", args.crops)
    batch = default_batch()
    result = run(Settings.for_run(args.quick, batch), batch, args.quick, crops_csv, args.compare)
    if args.plot is not None:
        plot(result, args.plot)
        common.log(f"plot written to {args.plot}")
    common.emit(result, args, summary)


if __name__ == "__main__":
    main()
