"""What every benchmark shares: its command line, the machine it ran on, statistics, JSON output.

Each benchmark is ``python -m fervid.benchmarks.NAME [--quick] [--json] [--out FILE]``. With ``--json``
stdout holds exactly one JSON document (progress goes to stderr), so results can be piped and
archived; ``--out`` also writes the document to a file. Numbers are medians and ratios measured
in the same run, because absolute figures on a shared 2-core box move from minute to minute.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from fervid.media.samples import SAMPLE_CLIP

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository when fervid runs from a checkout (editable install); ``site-packages/fervid`` otherwise."""
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
"""Only a checkout has ``tests/data`` and ``../shared`` beside it; an installed copy has neither."""


def display_path(path: Path) -> str:
    """A path as recorded in a benchmark's JSON: relative to the checkout (so results compare across
    machines), absolute in an installed copy or outside the checkout."""
    path = Path(path).resolve()
    if not IN_CHECKOUT:
        return str(path)
    try:
        return os.path.relpath(path, REPO_ROOT)
    except ValueError:
        return str(path)


def make_parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes; a benchmark adds its own after these."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")
    parser.add_argument("--quick", action="store_true",
                        help="a seconds-long run that exercises every part (for the test suite, not for figures)")
    parser.add_argument("--out", type=Path, help="also write the JSON document to this file")
    return parser


def log(message: str) -> None:
    """Progress for humans: stderr, so that stdout stays one JSON document."""
    print(message, file=sys.stderr, flush=True)


def require_bench(benchmark: str, what: str) -> None:
    """One line naming the ``bench`` extra and exit status 2 when ``what`` lacks it (psutil, matplotlib)."""
    from fervid.errors import FervidError
    from fervid.extras import BENCH, require

    try:
        require(BENCH, what)
    except FervidError as exc:
        log(f"fervid.benchmarks.{benchmark}: error: {exc}")
        raise SystemExit(2) from None


def checkout_default(*parts: str) -> Path | None:
    """An input's default inside the checkout (``REPO_ROOT/parts``); ``None`` in an installed copy."""
    return (REPO_ROOT.joinpath(*parts)).resolve() if IN_CHECKOUT else None


def require_input(benchmark: str, flag: str, path: Path | None, folder: bool = False) -> Path:
    """``path`` when it exists; else one line naming ``flag`` on stderr and exit status 2.

    A benchmark's default inputs (FER2013 rows in tests/data, photos in ../shared) exist only in a
    checkout, so an installed copy asks for them by name instead of failing somewhere inside.
    """
    if path is None:
        message = f"{flag} is required outside a fervid checkout (its default lies in the checkout)"
    elif not (path.is_dir() if folder else path.is_file()):
        message = f"{flag} {path} not found"
    else:
        return path
    log(f"fervid.benchmarks.{benchmark}: error: {message}")
    raise SystemExit(2)


def machine_info() -> dict:
    """Enough about the machine and software to tell whether two results are comparable."""
    import cv2
    import numpy

    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "processor": _cpu_model(), "numpy": numpy.__version__,
            "opencv": cv2.__version__, "git_commit": _git_commit(), "keras_backend": None}
    try:
        import keras

        info["keras"] = keras.__version__
        info["keras_backend"] = keras.backend.backend()
    except Exception:  # a benchmark without Keras (e.g. the detector sweep) still reports the rest
        pass
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    if not IN_CHECKOUT:  # an installed copy inside some other repository must not report its commit
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def decode_frames(path: Path, convert: Callable | None = None) -> list:
    """Every frame of a video file in memory (BGR, or what ``convert`` makes of each frame)."""
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(convert(frame) if convert else frame)
    finally:
        capture.release()
    if not frames:
        raise RuntimeError(f"no frames could be decoded from {path}")
    return frames


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), numpy's (linear interpolation, the one definition the
    project uses); ``None`` for no values."""
    if len(values) == 0:
        return None
    return float(np.percentile(values, q))


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 3 places, or ``None`` when either is missing or zero."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def time_repeats(function: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``function``."""
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return durations


def emit(result: dict, args: argparse.Namespace, summary: Callable[[dict], str] | None = None) -> None:
    """Print the result: one JSON document with ``--json``, else a human summary; ``--out`` too."""
    document = json.dumps(result, indent=2, sort_keys=False, default=_jsonable)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(document + "\n", encoding="utf-8")
    if args.json:
        print(document, flush=True)
    else:
        print(summary(result) if summary else document, flush=True)


def _jsonable(value: object) -> object:
    """numpy scalars and paths, which ``json`` does not know, as plain values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
