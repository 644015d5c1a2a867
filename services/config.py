"""The service's one configuration: a YAML file validated by pydantic.

Every setting that matters has a key here, unknown keys are errors that name the key (a typo
must not silently fall back to a default), and the defaults bind only to 127.0.0.1. Relative
file paths in a config file are resolved against the file's own folder, so a config can be
started from any working directory.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fervid.comms.endpoints import DEFAULT_ENDPOINT, EndpointError, check_tcp_endpoint
from fervid.errors import FervidError
from fervid.validation import first_problem
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.face_detector import DetectorParams
from fervid.models.scan_plan import PlanParams
from fervid.models.stream_tracking import TrackingParams
from fervid.models.tracker import TrackerParams
from fervid.services.placement import check_selector

STREAM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Stream names become ZMQ topics, Prometheus label values and actor names: keep them plain."""


class ConfigError(FervidError):
    """The configuration file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NodeSelector = Annotated[dict[str, str] | None,
                         AfterValidator(lambda value: None if value is None else check_selector(value))]
"""Ray node labels an actor's node must have (``fervid.io/node: cpu``, ``!gpu``, ``in(a,b)``)."""


class StreamConfig(_Strict):
    """One camera or video: what to read and how."""

    name: Annotated[str, Field(pattern=STREAM_NAME_PATTERN)]
    source: str | int = Field(description="file path, rtsp:// or http(s):// URL, or a device index")
    loop: bool = Field(False, description="files only: start again at the end")
    pace: bool = Field(True, description="files only: deliver frames at the file's fps "
                                         "(false: as fast as the pipeline takes them, no drops)")
    fps: Annotated[float, Field(gt=0, le=1000)] | None = Field(
        None, description="pace files at this rate instead of the rate stored in the file")

    @field_validator("source")
    @classmethod
    def _source_is_valid(cls, value: str | int) -> str | int:
        from fervid.media.sources import parse_source

        parse_source(value)  # raises ValueError with a message naming the problem
        return value


class CaptureConfig(_Strict):
    """Settings shared by every capture actor."""

    max_in_flight: Annotated[int, Field(ge=1, le=64)] | None = Field(
        None, description="frames of one stream inside the pipeline at once; null: the streams share "
                          "IN_FLIGHT_PER_DETECTOR frames per detector, at least 1 each (latency stays "
                          "bounded as streams are added)")
    reconnect_initial_s: Annotated[float, Field(gt=0)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0)] = 10.0
    open_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    read_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    num_cpus: Annotated[float, Field(ge=0)] = 0.0
    label_selector: NodeSelector = Field(
        None, description="network cameras: node labels their capture actor needs (files and devices "
                          "always run on the node of `fervid up`, where they are); null: any node")
    stuck_timeout_s: Annotated[float, Field(gt=0)] = Field(
        15.0, description="a frame in the pipeline this long is given up and counted as dropped "
                          "(its result was lost, e.g. with an actor that died), freeing its slot")
    stall_timeout_s: Annotated[float, Field(gt=0)] | None = Field(
        None, description="a stream whose source is up and that holds or receives frames but has processed "
                          "none for this long is 'stalled', and its capture actor is restarted after one "
                          "more stuck_timeout_s; null: 2 x stuck_timeout_s (every frame is processed or given "
                          "up within stuck_timeout_s, so twice that with nothing processed is no slow frame)")

    @model_validator(mode="after")
    def _backoff_order(self) -> "CaptureConfig":
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self


class DetectorConfig(_Strict):
    """The Haar detector pool (CPU)."""

    pool_size: Annotated[int, Field(ge=1, le=1024)] | None = Field(
        None, description="detector actors; default: the cluster's CPUs minus what other actors reserve")
    num_cpus: Annotated[float, Field(gt=0)] = 1.0
    label_selector: NodeSelector = Field(
        None, description="node labels a detector's node needs (e.g. {fervid.io/node: cpu} keeps them off "
                          "GPU nodes); the default pool size counts only the CPUs of matching nodes")
    # The fastest setting that kept recall on the sample clip and photos in benchmarks.detector
    # (docs/performance.md): about 8% faster than OpenCV's usual 1.1 / 5 / 30 / full size, but no
    # face under 60 px is found and the clip shows more false positives. Still images (`fervid
    # predict`, the app) keep the usual settings, where speed does not matter.
    scale_factor: Annotated[float, Field(gt=1.0, le=2.0)] = 1.05
    min_neighbors: Annotated[int, Field(ge=0, le=50)] = 5
    min_size: Annotated[int, Field(ge=8, le=4096)] = 60
    downscale: Annotated[float, Field(gt=0, le=1.0)] = 0.75

    def params(self) -> DetectorParams:
        """The ``detectMultiScale`` settings these keys describe."""
        return DetectorParams(scale_factor=self.scale_factor, min_neighbors=self.min_neighbors,
                              min_size=self.min_size, downscale=self.downscale)


class TrackingConfig(_Strict):
    """Face tracks per stream: they steer detection (full scans now and then, regions around the
    tracks in between), give faces stable ids and smooth their expressions (docs/architecture.md,
    "Scan plans"). The defaults are the models' own (``fervid.models.scan_plan.PlanParams`` ...),
    chosen by ``benchmarks.tracking`` (docs/performance.md)."""

    enabled: bool = Field(True, description="false: a full scan of every frame, no track ids, no smoothing "
                                            "(the behaviour before tracking, for comparison)")
    full_scan_every: Annotated[int, Field(ge=1, le=1000)] = Field(
        PlanParams.full_scan_every, description="frames from one full scan to the next at most (1: every frame)")
    region_margin: Annotated[float, Field(ge=0, le=4)] = Field(
        PlanParams.region_margin, description="added on each side of a track's box, as a share of its size")
    size_ratio: Annotated[float, Field(gt=1, le=4)] = Field(
        PlanParams.size_ratio, description="a region is scanned for faces of size / ratio to size x ratio")
    region_face_px: Annotated[int, Field(ge=0, le=512)] = Field(
        PlanParams.region_face_px, description="shrink regions so their smallest face is this many pixels "
                                               "before scanning (0: full resolution)")
    region_scan_every: Annotated[int, Field(ge=1, le=1000)] = Field(
        PlanParams.region_scan_every, description="frames from one region scan of the tracks to the next; "
                                                  "tracks found in their last scan are carried between (1: every frame)")
    scan_lost_tracks: bool = Field(PlanParams.scan_lost_tracks,
                                   description="keep a region around a track whose loss already caused a full scan")
    full_scan_after_misses: Annotated[int, Field(ge=1, le=1000)] = PlanParams.full_scan_after_misses
    motion: bool = Field(PlanParams.motion, description="also scan regions where something moved outside the tracks")
    motion_full_scan_share: Annotated[float, Field(gt=0, le=1)] = Field(
        PlanParams.motion_full_scan_share, description="motion over this share of the frame (a cut, a pan) "
                                                       "makes the frame a full scan")
    iou_threshold: Annotated[float, Field(gt=0, lt=1)] = TrackerParams.iou_threshold
    max_age_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        TrackerParams.max_age_s, description="a track ends after going unmatched this long")
    smoothing_half_life_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        TrackingParams.smoothing_half_life_s, description="half-life of each track's expression average "
                                                          "(0: no smoothing; the label shown is the smoothed one)")

    @field_validator("region_face_px")
    @classmethod
    def _region_face_fits_the_cascade(cls, value: int) -> int:
        if 0 < value < 24:
            raise ValueError("must be 0 (full resolution) or at least 24, the Haar cascade's window")
        return value

    def params(self, min_size: int) -> TrackingParams:
        """The tracking settings; ``min_size`` (the detector's) bounds faces searched in motion regions."""
        return TrackingParams(
            enabled=self.enabled,
            plan=PlanParams(full_scan_every=self.full_scan_every, region_margin=self.region_margin,
                            size_ratio=self.size_ratio, full_scan_after_misses=self.full_scan_after_misses,
                            motion=self.motion, motion_full_scan_share=self.motion_full_scan_share,
                            min_size=min_size, region_face_px=self.region_face_px,
                            region_scan_every=self.region_scan_every, scan_lost_tracks=self.scan_lost_tracks),
            tracker=TrackerParams(iou_threshold=self.iou_threshold, max_age_s=self.max_age_s),
            smoothing_half_life_s=self.smoothing_half_life_s)


class InferenceConfig(_Strict):
    """The batched Mini-Xception actors: one per GPU, or one on CPU when there is none."""

    model: Path | None = Field(None, description=".keras weights; default: the shipped model")

    @field_validator("model")
    @classmethod
    def _model_is_a_file(cls, value: Path | None) -> Path | None:
        """A missing model file would otherwise surface only when the inference actors start,
        a minute later and after Ray is up; the same path must exist on the inference nodes."""
        if value is not None and not value.is_file():
            raise ValueError(f"model file {value} does not exist")
        return value

    max_batch: Annotated[int, Field(ge=1, le=256)] = 64
    max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = Field(
        0.0, description="wait this long for more frames after the first; 0: batch what queued while the "
                         "model was busy (on CPU: p50 10 ms lower than with 10 ms, same throughput)")
    flip_average: bool = False
    actors: Annotated[int, Field(ge=1, le=64)] | None = Field(
        None, description="inference actors; default: one per GPU in the cluster, or 1")
    num_gpus: Annotated[float, Field(ge=0, le=8)] | None = Field(
        None, description="GPUs reserved per actor (fractions allowed); default: 1 when the cluster has GPUs")
    num_cpus: Annotated[float, Field(ge=0)] = 0.0
    label_selector: NodeSelector = Field(
        None, description="node labels an inference actor's node needs; GPUs are counted on matching nodes only")


class CurveConfig(_Strict):
    """ZMQ CURVE on the publisher: every message encrypted, and only monitors holding an
    authorized key can subscribe (key files from ``fervid keys DIR --name NAME``)."""

    server_secret_key: Path = Field(
        description="the publisher's key pair: NAME.key_secret; monitors get the matching NAME.key")
    authorized_clients: Path | None = Field(
        description="folder of the public keys (*.key) of the monitors allowed to subscribe, read again "
                    "when the folder changes; null: any monitor that has the publisher's public key "
                    "(encryption without client authentication)")

    @field_validator("server_secret_key")
    @classmethod
    def _key_pair_loads(cls, value: Path) -> Path:
        from fervid.comms.curve import CurveKeyError, load_key_pair

        try:
            load_key_pair(value)
        except CurveKeyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("authorized_clients")
    @classmethod
    def _client_keys_load(cls, value: Path | None) -> Path | None:
        from fervid.comms.curve import CurveKeyError, load_authorized_keys

        if value is not None:
            try:
                load_authorized_keys(value)
            except CurveKeyError as exc:
                raise ValueError(str(exc)) from None
        return value


class PublisherConfig(_Strict):
    """The ZMQ publisher that monitors subscribe to."""

    endpoint: str = DEFAULT_ENDPOINT
    jpeg_quality: Annotated[int, Field(ge=10, le=100)] = 80
    curve: CurveConfig | None = Field(
        None, description="null: plain TCP, anyone who can reach the endpoint may subscribe")

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_tcp(cls, value: str) -> str:
        try:
            return check_tcp_endpoint(value)
        except EndpointError as exc:
            raise ValueError(str(exc)) from None


class MetricsConfig(_Strict):
    """The Prometheus endpoint (``http://HOST:PORT/metrics``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 9108


class RayConfig(_Strict):
    """Where the service runs: an existing cluster, or a local Ray started for it."""

    address: str | None = Field(None, description="'auto', HOST:PORT or ray://HOST:PORT; none: embedded Ray")
    num_cpus: Annotated[int, Field(ge=1)] | None = Field(None, description="embedded Ray only")
    max_restarts: Annotated[int, Field(ge=-1)] = Field(-1, description="per actor; -1 = unlimited")


class ServiceConfig(_Strict):
    """Everything ``fervid up`` needs."""

    streams: list[StreamConfig] = Field(default_factory=lambda: [default_stream()])
    capture: CaptureConfig = CaptureConfig()
    detector: DetectorConfig = DetectorConfig()
    tracking: TrackingConfig = TrackingConfig()
    inference: InferenceConfig = InferenceConfig()
    publisher: PublisherConfig = PublisherConfig()
    metrics: MetricsConfig = MetricsConfig()
    ray: RayConfig = RayConfig()
    status_interval_s: Annotated[float, Field(gt=0)] = 5.0
    duration_s: Annotated[float, Field(gt=0)] | None = Field(None, description="stop after this long")

    @field_validator("streams")
    @classmethod
    def _unique_names(cls, streams: list[StreamConfig]) -> list[StreamConfig]:
        seen: set[str] = set()
        for stream in streams:
            if stream.name in seen:
                raise ValueError(f"duplicate stream name {stream.name!r}")
            seen.add(stream.name)
        return streams


def default_stream() -> StreamConfig:
    """The bundled sample clip, looped and paced like a live camera."""
    return StreamConfig(name="sample", source=str(SAMPLE_CLIP), loop=True)


def format_validation_error(error: ValidationError, origin: str) -> str:
    """One line naming the first offending key (and how many other problems there are)."""
    first, more = first_problem(error)
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        message = f"unknown key {location!r}"
    else:
        message = f"{location}: {first['msg'].removeprefix('Value error, ')}"
    return f"{origin}: {message}{more}"


def _resolve_paths(raw: dict, base: Path) -> dict:
    """Make relative file sources and model paths relative to the config file's folder."""
    streams = raw.get("streams")
    for stream in streams if isinstance(streams, list) else []:  # validation reports other shapes
        if isinstance(stream, dict) and isinstance(stream.get("source"), str):
            source = stream["source"].strip()
            if source.startswith("file://"):
                source = source[len("file://"):]
            elif source.isdigit() or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
                continue  # a device index or a URL
            try:
                path = Path(source).expanduser()
                if not path.is_absolute():
                    stream["source"] = str((base / path).resolve())
            except (RuntimeError, ValueError):
                continue  # unknown ~user or a NUL byte: validation names the key
    publisher = raw.get("publisher")
    curve = publisher.get("curve") if isinstance(publisher, dict) else None
    for key in ("server_secret_key", "authorized_clients"):
        if isinstance(curve, dict) and isinstance(curve.get(key), str):
            try:
                path = Path(curve[key]).expanduser()
                if not path.is_absolute():
                    curve[key] = str((base / path).resolve())
            except (RuntimeError, ValueError, OSError):
                pass  # unknown ~user or a NUL byte: validation names the key
    inference = raw.get("inference")
    if isinstance(inference, dict) and isinstance(inference.get("model"), str):
        try:
            model = Path(inference["model"])
            if not model.is_absolute():
                inference["model"] = str((base / model).resolve())
        except ValueError:
            pass
    return raw


def parse_config(raw: object, origin: str = "config", base: Path | None = None) -> ServiceConfig:
    """Validate an already-parsed document (a dict from YAML or JSON)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    if base is not None:
        raw = _resolve_paths(raw, base)
    try:
        return ServiceConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None


def load_config(path: str | Path | None) -> ServiceConfig:
    """Read and validate a YAML config; ``None`` gives the defaults (the bundled sample clip)."""
    if path is None:
        return ServiceConfig()
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.__class__.__name__}") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"config file {path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {path}{where}: {problem}") from None
    return parse_config(raw, origin=f"config file {path}", base=path.parent.resolve())
