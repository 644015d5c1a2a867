"""One video's output folder: faces.csv grown segment by segment, a manifest, and the finished reports.

An analysis of a long video can be stopped at any moment (Ctrl-C, a lost node, a full disk) and a
rerun must continue, not start over, and never trust a half-written row. So faces.csv only grows by
whole segments: the rows are written, flushed and fsynced, and only then does the manifest
(``.fervid-analysis.json``, replaced atomically) record the file's new committed length with the
segments, analysed frames and track ids done so far. Opening the folder again cuts faces.csv back
to that length: whatever an interruption left after it is gone, and the engine goes on with the
next segment.

The manifest also records which video (``VideoInfo.fingerprint``) and which settings produced the
rows, so that a folder is never continued with another video or with rows that another model or
another ``--every`` would give: the run stops with one line that says what is there and how to go
on (``--force`` replaces fervid's own files, nothing else; or another ``--out``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fervid.analysis.atomic_write import partial_path, write_bytes_atomically
from fervid.analysis.face_rows import FaceRows
from fervid.analysis.faces_csv import format_rows, header_line, read_rows
from fervid.analysis.summary import summarise
from fervid.analysis.timeline import longest_tracks, plot_timeline, timeline_rows
from fervid.analysis.video_file import VideoInfo
from fervid.errors import AnalysisOutputError

MANIFEST = ".fervid-analysis.json"
MANIFEST_FORMAT = 1
FACES_CSV, SUMMARY_JSON, TIMELINE_PNG, ANNOTATED_MP4 = "faces.csv", "summary.json", "timeline.png", "annotated.mp4"
REPORTS = (FACES_CSV, SUMMARY_JSON, TIMELINE_PNG, ANNOTATED_MP4)
OWN_FILES = tuple(name for report in (*REPORTS, MANIFEST)
                  for name in (report, partial_path(Path(report)).name))
"""Every name fervid writes in an output folder (reports, manifest, and their partial files):
what ``force`` removes, and nothing else."""
TIMELINE_TRACKS = 12
"""Lanes of timeline.png: the tracks seen longest (more would not be readable)."""
HOW_TO_PROCEED = "replace them (fervid analyze --force) or choose another folder"
"""How to go on, said by the command and the app alike (one wording for both)."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _canonical(settings: dict) -> dict:
    """``settings`` as the manifest stores and compares them (JSON types: tuples become lists)."""
    try:
        return json.loads(json.dumps(settings, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"settings must be JSON-able: {exc}") from None


class ResultsStore:
    """One video's output folder: faces.csv, a manifest (.fervid-analysis.json), and the finished
    reports (summary.json, timeline.png, annotated.mp4). Made by :meth:`open`."""

    complete: bool
    """A finished run's results are there (``finish`` was called)."""
    segments_done: int
    """Segments whose rows are committed in faces.csv (0 for a new folder)."""
    next_track_id: int
    """First unused global track id (1 for a new folder)."""
    frames_analysed: int
    """Analysed frames of all committed segments."""
    last_frame: int
    """Frame index of the last committed row (-1 while there is none): appended rows come after it."""

    def __init__(self, out_dir: Path, video: VideoInfo, settings: dict, manifest: dict) -> None:
        self.out_dir = out_dir
        self.video = video
        self.settings = settings
        self.faces_csv = out_dir / FACES_CSV
        self.summary_json = out_dir / SUMMARY_JSON
        self.timeline_png = out_dir / TIMELINE_PNG
        self.annotated_mp4 = out_dir / ANNOTATED_MP4
        self._committed_bytes = int(manifest["faces_csv_bytes"])
        self.complete = bool(manifest["complete"])
        self.segments_done = int(manifest["segments_done"])
        self.next_track_id = int(manifest["next_track_id"])
        self.frames_analysed = int(manifest["frames_analysed"])
        self.last_frame = int(manifest["last_frame"])

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, out_dir: Path, video: VideoInfo, settings: dict, *, force: bool = False) -> "ResultsStore":
        """Create ``out_dir`` (and missing parents) or reopen it, and cut faces.csv back to its
        committed rows. ``settings`` is a JSON-able dict of every option that changes results; it
        must hold ``every`` (the summary reports it).

        ``AnalysisOutputError`` (one line) when ``out_dir`` cannot be created or written, is a file,
        or holds results of another video or of other settings, or report files without a manifest;
        with ``force``, fervid's own files there (``OWN_FILES``) are removed first, nothing else."""
        out_dir = Path(out_dir)
        settings = _canonical(settings)
        if int(settings["every"]) < 1:
            raise ValueError("settings['every'] must be at least 1")
        if out_dir.exists() and not out_dir.is_dir():
            raise AnalysisOutputError(f"{out_dir}: is a file, not a folder for results; choose another --out")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            if force:
                for name in OWN_FILES:
                    (out_dir / name).unlink(missing_ok=True)
            manifest = cls._read_manifest(out_dir)
            if manifest is None:
                return cls._create(out_dir, video, settings)
            cls._check_same_run(out_dir, manifest, video, settings)
            store = cls(out_dir, video, settings, manifest)
            if not store.complete:
                store._cut_to_committed()
            return store
        except OSError as exc:
            raise AnalysisOutputError(f"{out_dir}: cannot write the results there ({_reason(exc)})") from None

    @staticmethod
    def _read_manifest(out_dir: Path) -> dict | None:
        path = out_dir / MANIFEST
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest["format"] != MANIFEST_FORMAT:
                raise ValueError(f"format {manifest['format']}, this fervid reads {MANIFEST_FORMAT}")
            return manifest
        except (ValueError, KeyError, TypeError) as exc:
            raise AnalysisOutputError(f"{out_dir}: {MANIFEST} is damaged or from another fervid ({exc}); "
                                      f"{HOW_TO_PROCEED}") from None

    @staticmethod
    def _check_same_run(out_dir: Path, manifest: dict, video: VideoInfo, settings: dict) -> None:
        recorded = manifest["video"]
        if recorded["fingerprint"] != video.fingerprint:
            raise AnalysisOutputError(f"{out_dir}: holds the results of another video ({recorded['path']}); "
                                      f"{HOW_TO_PROCEED}")
        if manifest["settings"] != settings:
            changed = sorted(key for key in manifest["settings"].keys() | settings.keys()
                             if manifest["settings"].get(key) != settings.get(key))
            raise AnalysisOutputError(f"{out_dir}: holds results of {recorded['path']} made with other settings "
                                      f"({', '.join(changed)} differ); {HOW_TO_PROCEED}")

    @classmethod
    def _create(cls, out_dir: Path, video: VideoInfo, settings: dict) -> "ResultsStore":
        found = [name for name in REPORTS if (out_dir / name).exists()]
        if found:
            raise AnalysisOutputError(f"{out_dir}: holds {', '.join(found)} but no {MANIFEST} (not a fervid "
                                      f"run this one can continue); {HOW_TO_PROCEED}")
        header = header_line().encode()
        store = cls(out_dir, video, settings, {
            "faces_csv_bytes": len(header), "complete": False, "segments_done": 0, "next_track_id": 1,
            "frames_analysed": 0, "last_frame": -1})
        # The manifest first: a faces.csv without one would look like a stranger's file to a rerun,
        # while a manifest without a faces.csv is a run of 0 segments, whose header is rewritten.
        store._write_manifest()
        store._cut_to_committed()
        return store

    def _cut_to_committed(self) -> None:
        """faces.csv back to its committed length: a partial line or uncommitted segment after it,
        left by an interruption, is dropped (with no committed segment, the header is rewritten)."""
        if self.segments_done == 0:
            write_bytes_atomically(self.faces_csv, header_line().encode())
            return
        size = self.faces_csv.stat().st_size if self.faces_csv.exists() else 0
        if size < self._committed_bytes:
            raise AnalysisOutputError(f"{self.faces_csv}: shorter than the {self.segments_done} segments "
                                      f"{MANIFEST} records (changed outside fervid); {HOW_TO_PROCEED}")
        if size > self._committed_bytes:
            os.truncate(self.faces_csv, self._committed_bytes)

    def _write_manifest(self) -> None:
        manifest = {"format": MANIFEST_FORMAT, "video": self.video.to_dict(), "settings": self.settings,
                    "faces_csv_bytes": self._committed_bytes, "complete": self.complete,
                    "segments_done": self.segments_done, "next_track_id": self.next_track_id,
                    "frames_analysed": self.frames_analysed, "last_frame": self.last_frame}
        write_bytes_atomically(self.out_dir / MANIFEST, json.dumps(manifest, indent=2, allow_nan=False).encode())

    # -- growing ------------------------------------------------------------------------------------
    def rows_from(self, frame: int) -> FaceRows:
        """Rows already committed with frame index >= ``frame`` (the last segment's overlap, which the
        next segment's tracks are joined to after a resume). Reads faces.csv in chunks."""
        return FaceRows.concat([chunk.take(chunk.frame >= frame) for chunk in read_rows(self.faces_csv)
                                if len(chunk) and chunk.frame[-1] >= frame])

    def append(self, segment_index: int, rows: FaceRows, frames_analysed: int, next_track_id: int) -> None:
        """Commit segment ``segment_index``'s rows (global track ids, smoothed, in frame order, all
        after ``last_frame``). ``frames_analysed`` and ``next_track_id`` are the totals after this
        segment (all segments so far), not the segment's own. ``ValueError`` for a segment out of
        order or rows that break these rules (a bug in the caller, not the user's doing)."""
        if self.complete:
            raise ValueError("the results are finished; nothing more can be appended")
        if segment_index != self.segments_done:
            raise ValueError(f"segment {segment_index} appended after {self.segments_done} committed segments; "
                             f"segments are appended in order")
        if frames_analysed < self.frames_analysed or next_track_id < self.next_track_id:
            raise ValueError("frames_analysed and next_track_id are totals over all segments; they cannot shrink "
                             f"({self.frames_analysed} -> {frames_analysed}, {self.next_track_id} -> {next_track_id})")
        if len(rows):
            if rows.frame[0] <= self.last_frame or (len(rows) > 1 and (rows.frame[1:] < rows.frame[:-1]).any()):
                raise ValueError(f"rows must be in frame order and after frame {self.last_frame}, "
                                 "the last one committed")
            if rows.track.min() < 1 or rows.track.max() >= next_track_id:
                raise ValueError(f"track ids must be global: 1 .. {next_track_id - 1}")
        data = format_rows(rows).encode()
        try:
            with open(self.faces_csv, "ab") as f:  # open() cut it to the committed length
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._committed_bytes += len(data)
            self.segments_done += 1
            self.frames_analysed = int(frames_analysed)
            self.next_track_id = int(next_track_id)
            if len(rows):
                self.last_frame = int(rows.frame[-1])
            self._write_manifest()
        except OSError as exc:
            raise AnalysisOutputError(f"{self.out_dir}: cannot write the results there ({_reason(exc)})") from None

    # -- finishing ----------------------------------------------------------------------------------
    def finish(self, speed: dict) -> dict:
        """Write summary.json and timeline.png from faces.csv (streamed twice: the summary names the
        longest tracks, whose thinned rows the timeline plots), mark the results complete and return
        the summary. ``speed``: ``{"frames_per_s", "x_real_time", "wall_s", "workers"}``."""
        summary = summarise(read_rows(self.faces_csv), self.video, self.frames_analysed, self.settings["every"],
                            speed)
        try:
            write_bytes_atomically(self.summary_json, json.dumps(summary, indent=2, allow_nan=False).encode())
            tracks = summary["tracks"]
            shown = longest_tracks(np.array([t["id"] for t in tracks], np.int64),
                                   np.array([t["frames_seen"] for t in tracks], np.int64), TIMELINE_TRACKS)
            plot_timeline(timeline_rows(read_rows(self.faces_csv), shown, self.video.duration_s), self.video,
                          self.timeline_png, TIMELINE_TRACKS, total_tracks=len(tracks))
            self.complete = True
            self._write_manifest()
        except OSError as exc:
            raise AnalysisOutputError(f"{self.out_dir}: cannot write the results there ({_reason(exc)})") from None
        return summary
