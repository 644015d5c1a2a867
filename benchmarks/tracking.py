"""Scanning less: face tracks that steer detection, against a full Haar scan of every frame.

Why: a full Haar scan of each 640x360 frame is what holds the service to about one live stream on
two cores (docs/performance.md). ``StreamTracking`` scans the whole frame only every few frames and
in between only regions around the known faces (and, optionally, where something moved). This
benchmark measures what that buys and what it costs, detection stage only, in one process:
frames/s, faces kept against the hand-checked truth and against the full scan's own boxes, boxes
the full scan never gave, pixels scanned, and how often a face's track id breaks.

Baseline: ``HaarFaceDetector.detect`` on every frame with the service's detector settings
(``services.config.DetectorConfig`` defaults), timed in the same run. A candidate runs, for each
frame ``i`` at ``ts = i / 30``: ``plan = st.plan(ts, frame)``, ``boxes = detector.detect_plan(frame,
plan)``, ``st.apply(ts, plan, Faces(boxes, uniform probabilities))``; all of that is timed.

Grid: ``PlanParams`` full_scan_every in (5, 10, 15) x motion on/off x region_margin (0.35, 0.5) x
size_ratio (1.3, 1.5) x region_face_px (0, 48): 48 candidates, the other plan settings at their
defaults and ``min_size`` from the detector.

Halves: every number is reported for the first half of the clip (frames 0-137), which the rule
below looks at, the second half (138-274), held out, and the whole clip. The run itself is one pass
over the whole clip: the second half starts with the tracks the first half left.

Matching: a truth face counts as found when a box overlaps it with IoU >= 0.4, one box per face,
highest IoU first (``benchmarks.detector.pairs``, the detector benchmark's matching); the same against the full scan's
boxes. A box is *extra* when it overlaps no truth box and no full-scan box with IoU >= 0.4.
Fragmentation: truth boxes in consecutive frames with IoU >= 0.3 form a true face track; each truth
box takes the track id of the box matching it; per true track count the distinct ids and the id
switches (a found box whose id differs from the last found one's). The baseline's boxes go through
the same ``FaceTracker`` (untimed) so that its fragmentation is there to compare with.

Timing: frames are decoded once (BGR, as the detector actors receive them) and held in memory;
``cv2.setNumThreads(1)`` as in the detector actors. ``--repeats`` rounds; each round runs every
candidate once in a freshly shuffled order, with a baseline pass before every ``--baseline-every``
candidates, so that outside load hits all alike. Frames/s per part is the median over the passes
(each pass times every frame). The boxes come from the first round; later rounds must give the
same boxes (``same_boxes_every_repeat``).

Size: ``--upscale F`` resizes the clip (and its truth boxes) by F first, so the same rule can be
applied at another frame size: the detector's and the plans' sizes are absolute pixels.

    python -m fervid.benchmarks.tracking [--json] [--quick] [--out FILE] [--plot PNG] [--upscale F]
"""
from __future__ import annotations

import argparse
import itertools
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fervid.benchmarks.common import (display_path, IN_CHECKOUT, REPO_ROOT, SAMPLE_CLIP, decode_frames, emit, log, machine_info,
                                     make_parser, median, ratio, require_bench, require_input)
from fervid.benchmarks.detector import TRUTH_FILE, load_truth, pairs
from fervid.models.face_detector import HaarFaceDetector
from fervid.models.faces import Faces
from fervid.models.labels import NUM_CLASSES
from fervid.models.scan_plan import PlanParams
from fervid.models.stream_tracking import StreamTracking, TrackingParams
from fervid.models.tracker import FaceTracker, iou_matrix
from fervid.services.config import DetectorConfig

FPS = 30.0
"""Media time of frame ``i`` is ``i / FPS`` (the clip plays at 29.97)."""
MATCH_IOU = 0.4
"""A box finds a truth face, or a full-scan box, at this IoU or more."""
TRUTH_TRACK_IOU = 0.3
"""Truth boxes in consecutive frames overlapping this much are one true face track."""

FULL_SCAN_EVERY = (5, 10, 15)
MOTION = (True, False)
REGION_MARGINS = (0.35, 0.5)
SIZE_RATIOS = (1.3, 1.5)
REGION_FACE_PX = (0, 48)

RECALL_FULL_MIN = 0.95
RECALL_TRUTH_TOLERANCE = 0.01
TIE_SHARE = 0.03
RULE = ("On the first half only, among candidates whose recall against the full scan's boxes is >= 0.95 AND "
        "whose recall against the truth is >= the full scan's recall against the truth minus 0.01, pick the "
        "one with the highest frames/s; ties within 3% broken by the higher recall against the full scan. "
        "If none qualifies, pick the highest recall against the full scan.")
RULE_READING = ("'within 3%': frames/s >= 0.97 x the highest qualifying frames/s; among those the higher recall "
                "against the full scan wins, then the higher frames/s; with none qualifying, equal recall "
                "against the full scan goes to the higher frames/s. Frames/s: the median over the timed passes.")

MEASURED_CODE = ("models", "media", "benchmarks/tracking.py", "benchmarks/common.py", "services/config.py")
"""What the run executes, relative to the checkout (``uncommitted_code`` lists its changed files)."""

PARTS = ("first_half", "second_half", "clip")
QUICK_FRAMES = (80, 120)
"""``--quick``: 40 frames where the performer walks in (frame 82), so regions and tracks are used."""
QUICK_CANDIDATES = (PlanParams(min_size=60), PlanParams(full_scan_every=5, motion=False, region_face_px=48,
                                                        min_size=60))

Box = Sequence[int]


# ---------------------------------------------------------------- matching and tracks (pure)

def extra_boxes(boxes: Sequence[Box], truths: Sequence[Box], full: Sequence[Box], threshold: float = MATCH_IOU) -> int:
    """Boxes that overlap no truth box and no full-scan box with IoU >= ``threshold``."""
    if not len(boxes):
        return 0
    known = [np.asarray(b, np.float64).reshape(-1, 4) for b in (truths, full)]
    known = np.concatenate(known)
    if not len(known):
        return len(boxes)
    return int(np.sum(iou_matrix(np.asarray(boxes, np.float64), known).max(axis=1) < threshold))


def truth_tracks(truth: dict[int, list[Box]], frames: Sequence[int],
                 threshold: float = TRUTH_TRACK_IOU) -> list[list[tuple[int, int]]]:
    """True face tracks within ``frames`` (ascending, consecutive): lists of ``(frame, truth index)``.

    A truth box continues the track of the box it pairs with in the previous frame (greedy, IoU >=
    ``threshold``); any other box starts a track. A frame without the face ends its track.
    """
    tracks: list[list[tuple[int, int]]] = []
    open_: dict[int, int] = {}  # truth index in the previous frame -> track number
    previous: int | None = None
    for frame in frames:
        boxes = truth.get(frame, [])
        links = dict(pairs(boxes, truth.get(previous, []), threshold)) if previous is not None else {}
        now: dict[int, int] = {}
        for index in range(len(boxes)):
            if index in links and links[index] in open_:
                number = open_[links[index]]
            else:
                number = len(tracks)
                tracks.append([])
            tracks[number].append((frame, index))
            now[index] = number
        open_, previous = now, frame
    return tracks


def fragmentation(tracks: Sequence[Sequence[tuple[int, int]]], ids_of: dict[tuple[int, int], int]) -> dict:
    """Per true track, distinct track ids and id switches among the boxes found (``ids_of``)."""
    found_tracks = ids = switches = 0
    for track in tracks:
        sequence = [ids_of[key] for key in track if key in ids_of]
        if not sequence:
            continue
        found_tracks += 1
        ids += len(set(sequence))
        switches += sum(1 for a, b in zip(sequence, sequence[1:]) if a != b)
    return {"truth_tracks": len(tracks), "found_tracks": found_tracks, "track_ids": ids, "id_switches": switches,
            "ids_per_found_track": round(ids / found_tracks, 3) if found_tracks else None}


# ---------------------------------------------------------------- candidates and the rule

def candidate_name(plan: PlanParams) -> str:
    """A short label such as ``every10-motion-m0.5-r1.5-px0`` (``-scan2``: regions scanned every
    second frame, tracks carried between; ``-droplost``: lost tracks get no region)."""
    name = (f"every{plan.full_scan_every}-{'motion' if plan.motion else 'still'}-m{plan.region_margin:g}"
            f"-r{plan.size_ratio:g}-px{plan.region_face_px}")
    if plan.region_scan_every > 1:
        name += f"-scan{plan.region_scan_every}"
    if not plan.scan_lost_tracks:
        name += "-droplost"
    return name


GRID_KEYS = {"full_scan_every": int, "motion": bool, "region_margin": float, "size_ratio": float,
             "region_face_px": int, "region_scan_every": int, "scan_lost_tracks": bool}
"""The ``PlanParams`` fields the grid spans, with their types (``--grid KEY=V1,V2``)."""


def default_grid() -> dict[str, tuple]:
    """The first pass's grid; the later settings at their ``PlanParams`` values before tracks
    could be carried (``region_scan_every`` 1, lost tracks scanned)."""
    return {"full_scan_every": FULL_SCAN_EVERY, "motion": MOTION, "region_margin": REGION_MARGINS,
            "size_ratio": SIZE_RATIOS, "region_face_px": REGION_FACE_PX, "region_scan_every": (1,),
            "scan_lost_tracks": (True,)}


def candidates(min_size: int, quick: bool = False, grid: dict[str, tuple] | None = None) -> list[PlanParams]:
    """The plan settings to measure (min_size: the detector's; grid: ``default_grid()`` unless given,
    keys it lacks at their ``default_grid()`` values)."""
    if quick:
        return [replace(plan, min_size=min_size) for plan in QUICK_CANDIDATES]
    g = {**default_grid(), **(grid or {})}
    keys = list(GRID_KEYS)
    return [PlanParams(**dict(zip(keys, values)), min_size=min_size)
            for values in itertools.product(*(g[key] for key in keys))]


def parse_grid_value(text: str) -> tuple[str, tuple]:
    """``KEY=V1,V2`` (a ``GRID_KEYS`` field, values of its type; booleans true/false)."""
    key, sep, values = text.partition("=")
    if not sep or key not in GRID_KEYS or not values:
        raise argparse.ArgumentTypeError(f"expected KEY=V1,V2 with KEY one of {', '.join(GRID_KEYS)}, got {text!r}")
    kind = GRID_KEYS[key]
    parsed = []
    for value in values.split(","):
        try:
            if kind is bool:
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                parsed.append(value.lower() == "true")
            else:
                parsed.append(kind(value))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a {kind.__name__}") from None
    return key, tuple(parsed)


def qualifies(part: dict, baseline_part: dict) -> bool:
    """The rule's two recall thresholds, on one part (a candidate's ``first_half``)."""
    return (part["recall_full"] >= RECALL_FULL_MIN - 1e-9
            and part["recall_truth"] >= baseline_part["recall_truth"] - RECALL_TRUTH_TOLERANCE - 1e-9)


def choose(rows: Sequence[dict], baseline: dict, part: str = "first_half") -> tuple[dict, bool]:
    """The row :data:`RULE` picks looking at ``part`` only, and whether it qualified."""
    ok = [row for row in rows if qualifies(row["parts"][part], baseline["parts"][part])]
    if not ok:
        return max(rows, key=lambda r: (r["parts"][part]["recall_full"], r["parts"][part]["fps"])), False
    best = max(row["parts"][part]["fps"] for row in ok)
    tied = [row for row in ok if row["parts"][part]["fps"] >= (1 - TIE_SHARE) * best - 1e-9]
    return max(tied, key=lambda r: (r["parts"][part]["recall_full"], r["parts"][part]["fps"])), True


# ---------------------------------------------------------------- one pass

@dataclass
class Pass:
    """One run over the frames: per frame its seconds, boxes, track ids and cumulative counts."""

    seconds: list[float]
    boxes: list[np.ndarray]
    ids: list[np.ndarray | None]
    counts: list[tuple[int, int, int]]
    """``(pixels scanned, full scans, region scans)`` after each frame, cumulative."""


def full_scan_pass(detector: HaarFaceDetector, frames: Sequence[np.ndarray]) -> Pass:
    """The baseline: ``detect`` on every frame."""
    height, width = frames[0].shape[:2]
    seconds, boxes = [], []
    for frame in frames:
        start = time.perf_counter()
        found = detector.detect(frame)
        seconds.append(time.perf_counter() - start)
        boxes.append(found)
    counts = [(width * height * (i + 1), i + 1, 0) for i in range(len(frames))]
    return Pass(seconds, boxes, [None] * len(frames), counts)


def tracking_pass(detector: HaarFaceDetector, plan_params: PlanParams, frames: Sequence[np.ndarray],
                  first: int) -> Pass:
    """``StreamTracking`` steering ``detect_plan``; frame ``k`` is clip frame ``first + k``."""
    stream = StreamTracking(TrackingParams(plan=plan_params))
    seconds, boxes, ids, counts = [], [], [], []
    for k, frame in enumerate(frames):
        ts = (first + k) / FPS
        start = time.perf_counter()
        plan = stream.plan(ts, frame)
        found = detector.detect_plan(frame, plan)
        faces = stream.apply(ts, plan, Faces(found, np.full((len(found), NUM_CLASSES), 1.0 / NUM_CLASSES)))
        seconds.append(time.perf_counter() - start)
        boxes.append(faces.boxes)
        ids.append(faces.track_ids)
        c = stream.counts
        counts.append((c.pixels_scanned, c.full_scans, c.region_scans))
    return Pass(seconds, boxes, ids, counts)


def track_full_scan(boxes: Sequence[np.ndarray], first: int) -> list[np.ndarray]:
    """Track ids for the baseline's boxes from the same tracker, every frame fully scanned (untimed)."""
    tracker = FaceTracker(TrackingParams().tracker)
    return [tracker.update((first + k) / FPS, frame_boxes).ids for k, frame_boxes in enumerate(boxes)]


def same_boxes(a: Pass, b: Pass) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes))


# ---------------------------------------------------------------- media

@dataclass
class Clip:
    first: int
    """Clip index of ``frames[0]``."""
    frames: list[np.ndarray]
    truth: dict[int, list[Box]]
    width: int
    height: int

    @property
    def indices(self) -> list[int]:
        return list(range(self.first, self.first + len(self.frames)))

    def parts(self) -> dict[str, list[int]]:
        """Positions (0-based into ``frames``) of each part; the first half takes the odd frame."""
        n = len(self.frames)
        half = (n + 1) // 2
        return {"first_half": list(range(half)), "second_half": list(range(half, n)), "clip": list(range(n))}


def load_clip(truth_doc: dict, path: Path, quick: bool) -> Clip:
    """Every frame of the clip in memory (BGR), checked against the truth file."""
    frames = decode_frames(path)
    expected = truth_doc["clip"]["frame_count"]
    width, height = truth_doc["clip"]["size"]
    if len(frames) != expected or frames[0].shape[:2] != (height, width):
        log(f"fervid.benchmarks.tracking: error: {path} has {len(frames)} frames of "
            f"{frames[0].shape[1]}x{frames[0].shape[0]}, the truth file describes {expected} of {width}x{height}")
        raise SystemExit(2)
    first, stop = QUICK_FRAMES if quick else (0, len(frames))
    truth = {int(frame): boxes for frame, boxes in truth_doc["clip"]["faces"].items()}
    return Clip(first, frames[first:stop], truth, width, height)


def upscaled(clip: Clip, factor: float) -> Clip:
    """The clip resized by ``factor`` (bilinear), its truth boxes scaled with it.

    A stand-in for a sharper, larger video (720p from the 640x360 clip at 2): the detector's and
    plans' sizes are absolute pixels, so this shows how defaults chosen at one size carry to
    another. Upsampling adds pixels, not detail, so it is no substitute for real 720p footage."""
    if factor == 1:
        return clip
    width, height = round(clip.width * factor), round(clip.height * factor)
    frames = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR) for frame in clip.frames]
    truth = {frame: [[int(round(v * factor)) for v in box] for box in boxes] for frame, boxes in clip.truth.items()}
    return Clip(clip.first, frames, truth, width, height)


# ---------------------------------------------------------------- numbers per part

def part_numbers(run: Pass, passes_seconds: Sequence[Sequence[float]], full: Pass, clip: Clip,
                 positions: Sequence[int], tracks: Sequence[Sequence[tuple[int, int]]]) -> dict:
    """Everything reported for one configuration on one part (fps ratio is added later)."""
    truth_faces = truth_found = full_boxes = full_found = boxes = extra = 0
    ids_of: dict[tuple[int, int], int] = {}
    for k in positions:
        frame = clip.first + k
        truths = clip.truth.get(frame, [])
        found, reference = run.boxes[k].tolist(), full.boxes[k].tolist()
        matched = pairs(found, truths, MATCH_IOU)
        truth_faces += len(truths)
        truth_found += len(matched)
        full_boxes += len(reference)
        full_found += len(pairs(found, reference, MATCH_IOU))
        boxes += len(found)
        extra += extra_boxes(found, truths, reference)
        if run.ids[k] is not None:
            for d, t in matched:
                ids_of[(frame, t)] = int(run.ids[k][d])
    before = run.counts[positions[0] - 1] if positions[0] > 0 else (0, 0, 0)
    after = run.counts[positions[-1]]
    pixels, full_scans, region_scans = (a - b for a, b in zip(after, before))
    n = len(positions)
    fps = part_fps(passes_seconds, positions)
    return {"frames": n, "fps": round(fps, 2), "_fps": fps,
            "truth_faces": truth_faces, "truth_found": truth_found,
            "recall_truth": round(truth_found / truth_faces, 4) if truth_faces else None,
            "full_scan_boxes": full_boxes, "full_scan_found": full_found,
            "recall_full": round(full_found / full_boxes, 4) if full_boxes else None,
            "boxes": boxes, "extra_boxes": extra,
            "pixels_per_frame": round(pixels / n), "pixels_share": round(pixels / (n * clip.width * clip.height), 4),
            "pixels_scanned": pixels, "full_scans": full_scans, "region_scans": region_scans,
            "fragmentation": fragmentation(tracks, ids_of)}


def part_fps(passes_seconds: Sequence[Sequence[float]], positions: Sequence[int]) -> float:
    """Frames/s over the frames at ``positions``: per pass, their count over their summed seconds;
    the median over passes."""
    return median(len(positions) / sum(seconds[k] for k in positions) for seconds in passes_seconds)


def config_row(name: str, settings: dict, run: Pass, passes: Sequence[Pass], full: Pass, clip: Clip,
               tracks: dict[str, list]) -> dict:
    seconds = [p.seconds for p in passes]
    return {"name": name, **settings, "passes": len(passes),
            "same_boxes_every_repeat": all(same_boxes(run, p) for p in passes[1:]),
            "parts": {part: part_numbers(run, seconds, full, clip, positions, tracks[part])
                      for part, positions in clip.parts().items()}}


def add_ratios(rows: Sequence[dict], baseline: dict) -> None:
    for row in [baseline, *rows]:
        for part in PARTS:
            cell = row["parts"][part]
            cell["fps_ratio"] = ratio(cell["_fps"], baseline["parts"][part]["_fps"])
    for row in [baseline, *rows]:
        for part in PARTS:
            row["parts"][part].pop("_fps")


# ---------------------------------------------------------------- the run

def measure(clip: Clip, detector: HaarFaceDetector, plans: Sequence[PlanParams], repeats: int,
            baseline_every: int, seed: int = 0) -> tuple[list[Pass], list[list[Pass]]]:
    """Baseline passes and, per candidate, its passes: ``repeats`` shuffled rounds (see the module doc)."""
    cv2.setNumThreads(1)
    detector.detect(clip.frames[0])  # first-call set-up stays out of the timings
    baseline: list[Pass] = []
    runs: list[list[Pass]] = [[] for _ in plans]
    for round_ in range(repeats):
        order = list(range(len(plans)))
        random.Random(seed + round_).shuffle(order)
        started = time.perf_counter()
        for position, index in enumerate(order):
            if position % baseline_every == 0:
                baseline.append(full_scan_pass(detector, clip.frames))
            runs[index].append(tracking_pass(detector, plans[index], clip.frames, clip.first))
        log(f"  round {round_ + 1}/{repeats}: {time.perf_counter() - started:.0f} s")
    return baseline, runs


def code_state() -> dict:
    """The commit the run started from and the measured code's uncommitted files then.

    Read before anything is measured: in a shared tree ``HEAD`` may move during a run of twenty
    minutes, and ``machine_info`` (called at the end, after the timings, because it imports Keras)
    would name a commit the run never executed.
    """
    if not IN_CHECKOUT:
        return {"git_commit": None, "uncommitted": None}
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--", *MEASURED_CODE], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "uncommitted": None}
    return {"git_commit": head, "uncommitted": sorted(line[3:] for line in status.splitlines())}


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    code = code_state()
    detector_params = DetectorConfig().params()
    detector = HaarFaceDetector(detector_params)
    grid = default_grid()
    if args.region_face_px:
        grid["region_face_px"] = tuple(args.region_face_px)
    if args.motion_only:
        grid["motion"] = (True,)
    grid.update(dict(args.grid or ()))
    try:
        plans = candidates(detector_params.min_size, args.quick, grid)
    except ValueError as error:  # a value PlanParams refuses (--grid region_scan_every=0)
        log(f"fervid.benchmarks.tracking: error: --grid: {error}")
        raise SystemExit(2) from None
    truth_doc = load_truth(args.truth)
    clip = upscaled(load_clip(truth_doc, args.clip, args.quick), args.upscale)
    repeats = args.repeats or (2 if args.quick else 3)
    log(f"tracking: {len(plans)} candidates and the full scan on {len(clip.frames)} frames, {repeats} rounds")

    baseline_passes, runs = measure(clip, detector, plans, repeats, args.baseline_every)
    full = baseline_passes[0]
    full.ids = track_full_scan(full.boxes, clip.first)
    positions = clip.parts()
    tracks = {part: truth_tracks(clip.truth, [clip.first + k for k in positions[part]]) for part in PARTS}

    baseline = config_row("full scan", {"detector": asdict(detector_params)}, full, baseline_passes, full, clip, tracks)
    rows = [config_row(candidate_name(plan), {"plan": asdict(plan)}, passes[0], passes, full, clip, tracks)
            for plan, passes in zip(plans, runs)]
    add_ratios(rows, baseline)
    for row in rows:
        row["qualifies_first_half"] = qualifies(row["parts"]["first_half"], baseline["parts"]["first_half"])
        row["qualifies_second_half"] = qualifies(row["parts"]["second_half"], baseline["parts"]["second_half"])
    chosen, qualified = choose(rows, baseline)
    on_second, _ = choose(rows, baseline, "second_half")
    frames = clip.indices
    return {
        "benchmark": "tracking",
        "quick": args.quick,
        "machine": {**machine_info(), "git_commit": code["git_commit"]},
        "uncommitted_code": code["uncommitted"],
        "config": {"clip": display_path(args.clip), "truth": display_path(args.truth), "frames": [frames[0], frames[-1]],
                   "parts": {part: [frames[p[0]], frames[p[-1]]] for part, p in positions.items()},
                   "size": [clip.width, clip.height], "upscale": args.upscale, "media_fps": FPS, "repeats": repeats,
                   "baseline_every": args.baseline_every, "baseline_passes": len(baseline_passes),
                   "threads": 1, "match_iou": MATCH_IOU, "truth_track_iou": TRUTH_TRACK_IOU,
                   "detector": asdict(detector_params), "plan_defaults": asdict(PlanParams()),
                   "tracking_defaults": {"tracker": asdict(TrackingParams().tracker),
                                         "smoothing_half_life_s": TrackingParams().smoothing_half_life_s},
                   "grid": grid,
                   "timed": "per frame: plan + detect_plan + apply (candidates), detect (baseline); BGR frames "
                            "decoded in advance, one thread"},
        "truth": {part: {"faces": baseline["parts"][part]["truth_faces"], "tracks": len(tracks[part])}
                  for part in PARTS},
        "rule": RULE,
        "rule_reading": RULE_READING,
        "baseline": baseline,
        "candidates": rows,
        "chosen": {"name": chosen["name"], "plan": chosen["plan"], "qualified": qualified,
                   "first_half": chosen["parts"]["first_half"],
                   "statement": _statement(chosen, baseline, "first_half", qualified)},
        "held_out": {"second_half": chosen["parts"]["second_half"], "clip": chosen["parts"]["clip"],
                     "meets_thresholds_on_second_half": chosen["qualifies_second_half"],
                     "rule_on_second_half_would_pick": on_second["name"],
                     "statement": _statement(chosen, baseline, "second_half", chosen["qualifies_second_half"])},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _statement(row: dict, baseline: dict, part: str, ok: bool) -> str:
    c, b = row["parts"][part], baseline["parts"][part]
    verdict = "meets" if ok else "misses"
    return (f"{part.replace('_', ' ')}: {row['name']} runs {c['fps']} frames/s, {c['fps_ratio']}x the full scan's "
            f"{b['fps']}; recall against the truth {c['recall_truth']} (full scan {b['recall_truth']}), against the "
            f"full scan's boxes {c['recall_full']}; {c['extra_boxes']} extra boxes; {c['pixels_share']} of the "
            f"pixels; {c['fragmentation']['id_switches']} id switches over {c['fragmentation']['found_tracks']} true "
            f"tracks (full scan through the same tracker: {b['fragmentation']['id_switches']}); it {verdict} the "
            f"rule's recall thresholds")



# ---------------------------------------------------------------- output

def summary(result: dict) -> str:
    """The baseline, the chosen candidate and every candidate, first half then second half."""
    header = (f"{'candidate':<30} {'f/s 1st':>7} {'x':>5} {'rec 1st':>7} {'vsfull':>6} {'f/s 2nd':>7} {'x':>5} "
              f"{'rec 2nd':>7} {'vsfull':>6} {'pix':>5} {'sw':>3} rule")
    lines = [header, "-" * len(header)]
    for row in [result["baseline"], *sorted(result["candidates"], key=lambda r: -r["parts"]["first_half"]["fps"])]:
        a, b = row["parts"]["first_half"], row["parts"]["second_half"]
        mark = " (chosen)" if row["name"] == result["chosen"]["name"] else ""
        rule = "" if "qualifies_first_half" not in row else ("yes" if row["qualifies_first_half"] else "no")
        lines.append(f"{row['name']:<30} {a['fps']:>7.1f} {a['fps_ratio']:>5.2f} {_num(a['recall_truth'])} "
                     f"{_num(a['recall_full'], 6)} {b['fps']:>7.1f} {b['fps_ratio']:>5.2f} {_num(b['recall_truth'])} "
                     f"{_num(b['recall_full'], 6)} {row['parts']['clip']['pixels_share']:>5.2f} "
                     f"{row['parts']['clip']['fragmentation']['id_switches']:>3} {rule}{mark}")
    lines += ["", f"rule: {result['rule']}", f"chosen: {result['chosen']['statement']}",
              f"held out: {result['held_out']['statement']}", f"elapsed: {result['elapsed_s']} s"]
    return "\n".join(lines)


def _num(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


def plot(result: dict, path: Path) -> None:
    """Frames/s ratio against recall vs the full scan, one dot per candidate, per half; chosen ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["candidates"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, part, title in zip(axes, ("first_half", "second_half"), ("first half (the rule looks here)",
                                                                      "second half (held out)")):
        for motion, colour in ((True, "tab:blue"), (False, "tab:orange")):
            for ok in (True, False):
                group = [r for r in rows if r["plan"]["motion"] == motion and r[f"qualifies_{part}"] == ok]
                if group:
                    ax.scatter([r["parts"][part]["recall_full"] for r in group],
                               [r["parts"][part]["fps_ratio"] for r in group], s=30,
                               facecolors=colour if ok else "none", edgecolors=colour,
                               label=f"motion {'on' if motion else 'off'}" + ("" if ok else " (misses a threshold)"))
        chosen = next(r for r in rows if r["name"] == result["chosen"]["name"])
        ax.scatter([chosen["parts"][part]["recall_full"]], [chosen["parts"][part]["fps_ratio"]], marker="o", s=220,
                   facecolors="none", edgecolors="red", linewidths=2, zorder=6, label=f"chosen {chosen['name']}")
        ax.scatter([1.0], [1.0], marker="*", s=220, c="black", zorder=5, label="full scan of every frame")
        ax.axvline(RECALL_FULL_MIN, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("recall against the full scan's boxes")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel("frames/s / full scan's frames/s")
    fig.suptitle("Scanning less: tracking-steered detection on the sample clip")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- command line

def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _upscale_factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 4.0:
        raise argparse.ArgumentTypeError(f"expected a factor from 1 to 4, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = make_parser("Tracking-steered detection against a full scan of every frame, on the sample clip.")
    parser.add_argument("--plot", type=Path, help="also draw frames/s ratio against recall to this PNG")
    parser.add_argument("--clip", type=Path, default=SAMPLE_CLIP, help="the sample clip")
    parser.add_argument("--truth", type=Path, default=TRUTH_FILE, help="hand-checked face boxes (JSON)")
    parser.add_argument("--repeats", type=_positive, help="timing rounds (default 3; 2 with --quick)")
    parser.add_argument("--region-face-px", type=int, nargs="+", metavar="PX",
                        help=f"grid values of region_face_px instead of {REGION_FACE_PX} (0 or >= 24 each)")
    parser.add_argument("--motion-only", action="store_true", help="grid: motion on only (halves the candidates)")
    parser.add_argument("--grid", type=parse_grid_value, action="append", metavar="KEY=V1,V2",
                        help=f"grid values of one PlanParams field instead of the default grid's (repeatable; "
                             f"keys: {', '.join(GRID_KEYS)})")
    parser.add_argument("--upscale", type=_upscale_factor, default=1.0, metavar="F",
                        help="resize the clip and its truth by F before measuring (2: 1280x720; default 1)")
    parser.add_argument("--baseline-every", type=_positive, default=16,
                        help="a full-scan pass before every N candidates in each round (default 16)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot is not None:
        require_bench("tracking", "--plot")
    require_input("tracking", "--clip", args.clip)
    require_input("tracking", "--truth", args.truth)
    result = run(args)
    if args.plot is not None:
        plot(result, args.plot)
    emit(result, args, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
