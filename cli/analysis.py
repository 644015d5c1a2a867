"""``fervid analyze``: recorded videos to per-face expression reports (faces.csv, summary.json,
timeline.png, and with ``--annotate`` an annotated MP4), one folder per video under ``--out``.

Bad input is sorted out before the slow work: a path that does not exist or a folder without
videos stops the command at once; a file that is not a video, or an output folder that holds
another video's results, is one line for that video while the others are analysed, and the exit
status (2) says something failed. An interrupted run leaves whole committed segments behind, and
the same command continues after them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fervid.cli.output import EXIT_USER_ERROR, emit_json, print_error

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def output_folders(videos: list[Path], out: Path) -> list[Path]:
    """``out/<video name without suffix>`` for each video; two videos of one name would share a
    folder, which is refused before anything is written."""
    from fervid.errors import AnalysisOutputError

    folders: dict[Path, Path] = {}
    for video in videos:
        folder = out / video.stem
        if folder in folders:
            raise AnalysisOutputError(f"{folders[folder]} and {video} would share the results folder {folder}: "
                                      "analyse them in separate runs with different --out")
        folders[folder] = video
    return list(folders)


def make_pool(args: argparse.Namespace, options):
    """This process (one worker, no Ray) or Ray workers: on ``--address``'s cluster, or on an
    embedded Ray on this machine for ``--workers`` 2 or more.

    Locally one process is the default: it already keeps every core busy (OpenCV's scan and
    TensorFlow are multi-threaded), and on the 2-core box two one-thread workers were no faster
    (docs/performance.md, "Recorded video"), only slower to start."""
    workers = args.workers
    if args.address is None and (workers or 1) == 1:
        from fervid.analysis.in_process_pool import InProcessPool
        from fervid.models.recognizer import Recognizer

        return InProcessPool(Recognizer.load(options.model, options.detector))
    from fervid.services.analysis_pool import RayAnalysisPool

    if args.address is not None:
        from fervid.services.service import prepare_address

        prepare_address(args.address)
    return RayAnalysisPool(workers, args.model, address=args.address)


class _NothingToRun:
    """The pool for a run whose videos are all analysed already: it is never given a segment."""

    workers = 1

    def run(self, segments, on_frames=None):
        for segment in segments:
            raise RuntimeError(f"segment {segment.index} of {segment.video} reached the idle pool")
        return iter(())


def _entry(video: Path, folder: Path | None, **fields) -> dict:
    return {"video": str(video), "out": str(folder) if folder else None, **fields}


def cmd_analyze(args: argparse.Namespace) -> int:
    from fervid.cli.checks import check_out_folder
    from fervid.errors import FervidError
    from fervid.extras import ANALYSIS, require

    require(ANALYSIS, "fervid analyze")
    from tqdm import tqdm

    from fervid.analysis.annotated_video import write_annotated
    from fervid.analysis.faces_csv import read_rows
    from fervid.analysis.results_store import ResultsStore
    from fervid.analysis.runner import VideoJob, analyse_videos
    from fervid.analysis.segments import AnalysisOptions, split
    from fervid.analysis.video_file import find_videos, probe_video
    from fervid.models.face_detector import DetectorParams

    check_out_folder(args.out)
    videos = find_videos(args.videos)
    folders = output_folders(videos, args.out)
    options = AnalysisOptions(every=args.every, segment_s=args.segment_s, model=args.model,
                              detector=DetectorParams(min_size=args.min_size),
                              full_scan_every=args.full_scan_every)
    settings = options.settings()  # reads the weights: a missing model file stops here, before any folder
    entries: dict[Path, dict] = {}
    jobs: list[VideoJob] = []
    for video, folder in zip(videos, folders):
        try:
            info = probe_video(video)
            store = ResultsStore.open(folder, info, settings, force=args.force)
        except FervidError as exc:
            print_error("analyze", exc)
            entries[video] = _entry(video, folder, status="error", error=str(exc))
            continue
        if store.complete:
            print(f"{video}: already analysed in {folder} (--force to analyse it again)", file=sys.stderr)
        elif store.segments_done:
            print(f"{video}: resuming after {store.frames_analysed} analysed frames committed in {folder}",
                  file=sys.stderr)
        jobs.append(VideoJob(info, store, options))
    pending = [segment for job in jobs if not job.store.complete
               for segment in split(job.info, options)[job.store.segments_done:]]
    total_frames = sum(segment.frames_to_analyse for segment in pending)
    if pending:
        pool = make_pool(args, options)
        try:
            with tqdm(total=total_frames, unit="frame", desc="analysing", file=sys.stderr, dynamic_ncols=True,
                      disable=args.no_progress) as bar:
                outcomes = analyse_videos(jobs, pool, lambda video, n: bar.update(n))
        finally:
            pool.close()
    else:  # every folder already holds finished results: no model, no workers
        outcomes = analyse_videos(jobs, _NothingToRun())
    for outcome in outcomes:
        video = Path(outcome.info.path)
        folder = outcome.store.faces_csv.parent
        if outcome.error:
            print_error("analyze", outcome.error)
            entries[video] = _entry(video, folder, status="error", error=outcome.error)
            continue
        entry = _entry(video, folder, status="already analysed" if outcome.skipped else "analysed",
                       summary=outcome.summary)
        if args.annotate:
            entry["annotated"] = str(_annotate(outcome, args, write_annotated, read_rows, tqdm))
        entries[video] = entry
        if not args.json:
            _print_line(entry, outcome)
    ordered = [entries[video] for video in videos]
    if args.json:
        emit_json({"out": str(args.out), "videos": ordered})
    return EXIT_USER_ERROR if any(entry["status"] == "error" for entry in ordered) else 0


def _annotate(outcome, args: argparse.Namespace, write_annotated, read_rows, tqdm) -> Path:
    """The annotated MP4 beside the reports, drawn from faces.csv (kept when already there)."""
    store = outcome.store
    if store.annotated_mp4.is_file() and outcome.skipped:
        return store.annotated_mp4
    with tqdm(total=outcome.info.frames, unit="frame", desc="annotating", file=sys.stderr, dynamic_ncols=True,
              disable=args.no_progress) as bar:
        write_annotated(outcome.info, read_rows(store.faces_csv), store.annotated_mp4, args.every, bar.update)
    return store.annotated_mp4


def _print_line(entry: dict, outcome) -> None:
    video = entry["summary"]["video"]
    speed = video.get("speed") or {}
    line = (f"{entry['video']}: {video['frames_analysed']} frames analysed, {video['faces']} faces in "
            f"{video['tracks']} tracks")
    if not outcome.skipped and speed:
        line += f", {speed['frames_per_s']:.1f} frames/s ({speed['x_real_time']:.1f}x real time)"
    print(f"{line} -> {entry['out']}", flush=True)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``analyze``."""
    from fervid.cli.checks import positive_seconds
    from fervid.models.classifier_paths import DEFAULT_MODEL_PATH
    from fervid.models.face_detector import DetectorParams
    from fervid.models.scan_plan import PlanParams

    p = sub.add_parser("analyze", help="recorded videos to per-face expression reports (CSV, summary, timeline)")
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO_OR_FOLDER",
                   help="video files, or folders whose video files are all analysed")
    p.add_argument("--out", required=True, type=Path,
                   help="results folder: each video's reports go in OUT/<video name>/ (created if missing)")
    p.add_argument("--annotate", action="store_true", help="also write annotated.mp4 (boxes, track ids, labels)")
    p.add_argument("--every", type=positive_int, default=1, help="analyse every Nth frame (default: all)")
    p.add_argument("--workers", type=positive_int,
                   help="segments analysed side by side by Ray workers (default: 1, this process, which "
                        "already uses every core; on --address, one per CPU of the cluster)")
    p.add_argument("--address", help="run the workers on this Ray cluster ('auto', HOST:PORT); every node reads "
                                     "the videos at the same path (shared storage); the reports are written here")
    p.add_argument("--segment-s", type=positive_seconds, default=10.0,
                   help="seconds of video per segment, the unit of parallel work and of resuming (default 10)")
    p.add_argument("--min-size", type=positive_int, default=DetectorParams().min_size,
                   help="smallest face searched for, in pixels (default %(default)s, as fervid predict and the app)")
    p.add_argument("--full-scan-every", type=positive_int, default=PlanParams().full_scan_every, metavar="N",
                   help="analysed frames from one full Haar scan to the next (default %(default)s; in between "
                        "only regions around the tracks and where something moved are scanned, faster but some "
                        "faces are missed: see docs/analysis.md); 1: every frame fully scanned")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="a .keras weights file")
    p.add_argument("--force", action="store_true",
                   help="replace results already in a video's folder instead of resuming or refusing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print one JSON document: every video's summary or error")
    p.set_defaults(func=cmd_analyze)
