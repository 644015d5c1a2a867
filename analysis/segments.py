"""``AnalysisOptions`` and ``Segment``: how a video is analysed, and the pieces it is cut into.

A long video is cut into segments of ``segment_s`` seconds that workers analyse side by side. Each
segment starts its own tracker a little earlier (``overlap_s``: the warm-up) so that its tracks
already exist at its first written frame, and so that they can be matched to the previous
segment's tracks over the frames both saw (:mod:`fervid.analysis.track_join`). The cut depends only
on the video and the options, never on the number of workers: a rerun with other workers resumes
the same plan where the last committed segment ended.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fervid.analysis.video_file import VideoInfo
from fervid.errors import ModelLoadError
from fervid.models.classifier_paths import DEFAULT_MODEL_PATH
from fervid.models.face_detector import DetectorParams
from fervid.models.scan_plan import PlanParams
from fervid.models.stream_tracking import TrackingParams, tracking_params_for


@dataclass(frozen=True)
class AnalysisOptions:
    every: int = 1
    """Analyse the frames whose index is a multiple of this (1: every frame)."""
    segment_s: float = 10.0
    """Length of a segment in the video's own time (the last one is shorter)."""
    overlap_s: float = 0.5
    """Warm-up before each segment's first frame: analysed to start its tracks and to join them to
    the previous segment's, not written (at most ``segment_s``, so a warm-up lies inside one
    segment)."""
    batch_frames: int = 16
    """Frames whose faces are classified in one call (batching is what makes the classifier fast;
    only the crops of the pending frames are held)."""
    model: Path | None = None
    """Classifier weights (``None``: the shipped ones)."""
    detector: DetectorParams = field(default_factory=DetectorParams)
    full_scan_every: int = PlanParams().full_scan_every
    """Frames from one full Haar scan to the next (the scan plan's ``full_scan_every``). Between full
    scans only regions around the tracks and where something moved are scanned, which is where the
    speed comes from and where faces can be missed: ``benchmarks.analyze`` reports the share of a
    full-scan loop's faces kept. 1 scans every frame whole: the plain loop's faces, with tracks."""

    def __post_init__(self) -> None:
        if self.full_scan_every < 1:
            raise ValueError(f"full_scan_every must be >= 1, got {self.full_scan_every}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.segment_s <= 0:
            raise ValueError(f"segment_s must be > 0, got {self.segment_s}")
        if not 0 <= self.overlap_s <= self.segment_s:
            raise ValueError(f"overlap_s must be in [0, segment_s], got {self.overlap_s}")
        if self.batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {self.batch_frames}")

    @property
    def tracking(self) -> TrackingParams:
        """The app's rule for this detector, so a video analysed here gets the tracks the app shows,
        with this ``full_scan_every``."""
        params = tracking_params_for(self.detector)
        return replace(params, plan=replace(params.plan, full_scan_every=self.full_scan_every))

    def settings(self) -> dict:
        """Every option that changes the results, JSON-able, for the results store to compare a
        rerun against (``batch_frames`` only changes speed and is left out)."""
        return {"model_sha256": model_digest(self.model), "every": self.every, "segment_s": self.segment_s,
                "overlap_s": self.overlap_s, "detector": asdict(self.detector), "tracking": asdict(self.tracking)}


def model_digest(model: Path | None) -> str:
    """SHA-256 of the weights file: results of other weights are other results, whatever its name."""
    path = Path(model) if model is not None else DEFAULT_MODEL_PATH
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def analysed_count(start: int, stop: int, every: int) -> int:
    """How many frame indices in ``[start, stop)`` are multiples of ``every``."""
    return max(0, -(-stop // every) - -(-start // every))


@dataclass(frozen=True)
class Segment:
    """One piece of work: frames ``[start, stop)`` of ``info``'s video are written, frames
    ``[warmup_start, start)`` only warm its tracker up. Carries its video and options, so that any
    worker can run it alone."""

    info: VideoInfo
    options: AnalysisOptions
    index: int
    warmup_start: int
    start: int
    stop: int

    @property
    def video(self) -> str:
        return self.info.path

    @property
    def frames_to_analyse(self) -> int:
        """Frames of ``[start, stop)`` this segment analyses (what its progress counts up to)."""
        return analysed_count(self.start, self.stop, self.options.every)


WARMUP_ANALYSED_FRAMES = 3
"""A warm-up with overlap holds at least this many analysed frames, however large ``every`` is: the
frames both neighbours saw are all that joins their tracks, and with ``--every 30`` half a second of
video would hold none, so every border would start new tracks."""


def segment_frames(info: VideoInfo, options: AnalysisOptions) -> tuple[int, int]:
    """Segment length and warm-up length in frames of this video (at least one frame per segment;
    a warm-up, unless ``overlap_s`` is 0, long enough for ``WARMUP_ANALYSED_FRAMES`` analysed frames)."""
    length = max(1, round(options.segment_s * info.fps))
    overlap = round(options.overlap_s * info.fps)
    if options.overlap_s > 0:
        overlap = max(overlap, WARMUP_ANALYSED_FRAMES * options.every)
    return length, min(length, overlap)


def split(info: VideoInfo, options: AnalysisOptions) -> list[Segment]:
    """The video's segments in order: equal lengths, the last one shorter, warm-ups clipped at 0."""
    length, overlap = segment_frames(info, options)
    return [Segment(info, options, index, max(0, start - overlap), start, min(start + length, info.frames))
            for index, start in enumerate(range(0, info.frames, length))]
