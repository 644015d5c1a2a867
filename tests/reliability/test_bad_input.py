"""Bad input, the whole matrix in one place: images, videos, FER2013 CSVs and model files.

The rule under test: bad input is ONE line on stderr naming the file and the problem, exit status 2,
never a traceback, and nothing else harmed (inputs unchanged, an interrupted training run left as
it was). Valid but unusual input (16-bit, CMYK, alpha, grey, EXIF-rotated) must simply work.

Every case is a real run: the ``fervid`` command in a subprocess, or the real function where the
command's error path is already exercised once (each ``fervid`` run that loads the model pays for
the TensorFlow import, several seconds here). Where the rest of the matrix is tested:

- image pixel formats (shape and dtype), missing file, folder: tests/models/test_image_io.py;
  the desktop app's upload (text file, bomb): tests/gui/test_app.py (it uses the same loader)
- CSV rows, one check each, at the library level: tests/training/test_data.py
- missing model, damaged archive, 3-class model: tests/models/test_classifier.py
- a text file as a video: tests/services/test_frame_source.py; the app's camera on an
  unopenable source: tests/gui/test_app.py
- ``fervid attach`` of a missing file: tests/services/test_service_end_to_end.py; a config naming
  a missing source: tests/services/test_config.py
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fervid.models.classifier_paths import DEFAULT_MODEL_PATH
from fervid.errors import ImageLoadError
from fervid.media.image_io import load_image
from fervid.media.frame_source import FrameSource, StreamState
from fervid.media.sources import parse_source
from tests.conftest import OBAMA, REPO, SAMPLE_CLIP, TWO_PEOPLE, run_fervid

pytestmark = pytest.mark.timeout(300)

HEADER = "emotion,pixels,Usage\n"
GOOD_ROW = "3," + " ".join(["128"] * 2304) + ",PublicTest\n"


# -- helpers -----------------------------------------------------------------------------------

def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, nothing on stdout, exactly one stderr line holding every fragment; returns the line."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == "", result.stdout
    return lines[0]


def digests(*paths: Path) -> dict[Path, str]:
    """SHA-256 of every file under ``paths`` (files or folders), to prove nothing was touched."""
    files = [p for path in paths for p in ([path] if path.is_file() else sorted(path.rglob("*"))) if p.is_file()]
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: Path, side: int = 30_000) -> Path:
    """A real, complete 1-bit PNG of ``side`` x ``side`` black pixels: ~100 KB on disk, 900 MB
    decoded as 8-bit grey, 2.7 GB as BGR. Written row block by row block, never held decoded."""
    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * min(1000, side - start)) for start in range(0, side, 1000))
    idat += packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
                     + png_chunk(b"IEND", b""))
    return path


def write_png_header_only(path: Path, side: int = 30_000) -> Path:
    """A PNG of a few bytes whose header claims ``side`` x ``side`` pixels."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))
    return path


def mp4_faststart(data: bytes) -> bytes:
    """The same MP4 with its index (``moov``) moved before the media data, as web encoders write it.

    The sample clip has its index at the end, so cutting it loses the index and nothing plays; with
    the index first, a cut file plays up to the cut. Chunk offsets (``stco``) move by the index size.
    """
    def atoms(buf, start, end):
        while start + 8 <= end:
            size, kind = struct.unpack(">I4s", buf[start:start + 8])
            assert size >= 8, "64-bit or open-ended atoms are not expected in the sample clip"
            yield kind, start, size
            start += size

    def shift(moov: bytearray, start: int, end: int, delta: int) -> None:
        for kind, pos, size in atoms(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(moov, pos + 8, pos + size, delta)
            elif kind == b"stco":
                (count,) = struct.unpack(">I", moov[pos + 12:pos + 16])
                for at in range(pos + 16, pos + 16 + 4 * count, 4):
                    moov[at:at + 4] = struct.pack(">I", struct.unpack(">I", moov[at:at + 4])[0] + delta)
            assert kind != b"co64", "64-bit chunk offsets are not expected in the sample clip"

    top = {kind: (pos, size) for kind, pos, size in atoms(data, 0, len(data))}
    moov_at, moov_size = top[b"moov"]
    moov = bytearray(data[moov_at:moov_at + moov_size])
    shift(moov, 8, moov_size, moov_size)
    after_ftyp = sum(top[b"ftyp"])
    return data[:after_ftyp] + bytes(moov) + data[after_ftyp:moov_at] + data[moov_at + moov_size:]


def drain(source: FrameSource, seconds: float) -> tuple[list[np.ndarray], list[StreamState], list[BaseException]]:
    """Run ``source.frames`` in a thread for at most ``seconds``: frames, states seen, exceptions."""
    stop = threading.Event()
    frames: list[np.ndarray] = []
    errors: list[BaseException] = []
    states: list[StreamState] = []

    def run():
        try:
            frames.extend(frame.image for frame in source.frames(stop))
        except BaseException as exc:  # recorded: the test fails on it instead of a silent thread death
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    while thread.is_alive() and time.monotonic() < deadline:
        states.append(source.state)
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive(), "frames() did not return after stop was set"
    return frames, states, errors


def read_all_frames(path: Path) -> list[np.ndarray]:
    frames, _, errors = drain(FrameSource(parse_source(str(path)), pace=False), 60)
    assert not errors
    return frames


# -- images ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Bad and unusual images made from the real photo (one face, upright)."""
    folder = tmp_path_factory.mktemp("images")
    photo = Image.open(OBAMA)
    bgr = cv2.imread(str(OBAMA))
    paths: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        paths[name] = folder / name
        paths[name].write_bytes(data)

    put("empty.jpg", b"")
    put("notes.jpg", b"this is a text file, not a picture\n" * 20)
    put("cut.jpg", OBAMA.read_bytes()[: OBAMA.stat().st_size // 2])
    photo.save(folder / "whole.png")
    whole_png = (folder / "whole.png").read_bytes()
    put("cut.png", whole_png[: len(whole_png) // 2])
    paths["header_bomb.png"] = write_png_header_only(folder / "header_bomb.png")
    paths["bomb.png"] = write_png_bomb(folder / "bomb.png")

    # Valid but unusual: each must still show the face.
    cv2.imwrite(str(folder / "colour16.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "grey16.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    rgba = np.asarray(photo.convert("RGBA")).copy()
    rgba[..., 3] = 200  # see-through everywhere ...
    rgba[:80, :, 3] = 0  # ... and fully transparent at the top
    Image.fromarray(rgba).save(folder / "alpha.png")
    photo.convert("L").save(folder / "grey.jpg")
    sideways = photo.transpose(Image.Transpose.ROTATE_90)  # stored lying on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to show it upright
    sideways.save(folder / "exif_rotated.jpg", exif=exif)
    sideways.save(folder / "sideways_no_exif.jpg")  # the control: same pixels, no tag
    for name in ("colour16.png", "grey16.png", "cmyk.jpg", "alpha.png", "grey.jpg", "exif_rotated.jpg",
                 "sideways_no_exif.jpg"):
        paths[name] = folder / name
    assert paths["colour16.png"].read_bytes()[24:26] == bytes([16, 2])  # IHDR: 16-bit, RGB
    assert Image.open(paths["grey16.png"]).mode == "I;16" and Image.open(paths["cmyk.jpg"]).mode == "CMYK"
    return paths


BAD_IMAGES = [
    ("empty.jpg", "not an image"),
    ("notes.jpg", "not an image"),
    ("cut.jpg", "truncated"),
    ("cut.png", "truncated"),
    ("header_bomb.png", "too large to decode safely"),
    ("bomb.png", "too large to decode safely"),
]


@pytest.mark.parametrize("name, problem", BAD_IMAGES)
def test_bad_images_are_refused_by_the_loader_in_one_line(images, name, problem):
    """``fervid predict``, the desktop app's upload and the benchmarks all read through this loader."""
    before = digests(images[name])
    with pytest.raises(ImageLoadError) as caught:
        load_image(images[name])
    message = str(caught.value)
    assert problem in message and name in message and "\n" not in message, message
    assert digests(images[name]) == before


@pytest.mark.parametrize("side", [30_000, 9_400])
def test_a_real_decompression_bomb_is_refused_before_decoding(images, tmp_path, side):
    """A complete, decodable PNG of a few KB is refused by its header: the process that reads it
    never grows near what its pixels would take decoded (30000^2: 900 MB grey, 2.7 GB BGR; 9400^2,
    under Pillow's own bomb limit and refused by fervid's 64-megapixel one: 88 MB grey, 265 MB BGR)."""
    bomb = images["bomb.png"] if side == 30_000 else write_png_bomb(tmp_path / "bomb9400.png", side)
    assert bomb.stat().st_size < 500_000
    # The child reports its own high-water mark (VmHWM belongs to the process image exec'd, unlike
    # wait4's ru_maxrss, which keeps the forking test process's peak across the exec).
    code = ("import sys\nfrom fervid.errors import ImageLoadError\nfrom fervid.media.image_io import load_image\n"
            "def peak_kb():\n    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "try:\n    load_image(sys.argv[1])\nexcept ImageLoadError as exc:\n    print(exc)\n"
            "    print('peak_kb', peak_kb(), file=sys.stderr)\n    sys.exit(2)\n")
    run = subprocess.run([sys.executable, "-c", code, str(bomb)], cwd=REPO, text=True, capture_output=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert "too large to decode safely" in run.stdout and "Traceback" not in run.stderr
    peak_mb = int(run.stderr.rsplit("peak_kb", 1)[1].split()[0]) / 1024
    assert peak_mb < 250, f"reading the bomb took {peak_mb:.0f} MB: it was decoded"


def test_damaged_exif_is_ignored_and_the_orientation_still_honoured(tmp_path):
    """EXIF is metadata: a tag with a damaged type (Pillow's own ``exif_transpose`` raises
    ``struct.error`` on it) or a cut EXIF block must not make an intact picture unreadable, nor
    print warnings."""
    image = Image.new("RGB", (64, 48), "white")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Cam"  # Make, ASCII
    image.save(tmp_path / "good.jpg", exif=exif)
    data = (tmp_path / "good.jpg").read_bytes()
    assert data.count(b"\x01\x0f\x00\x02") == 1
    (tmp_path / "bad_type.jpg").write_bytes(data.replace(b"\x01\x0f\x00\x02", b"\x01\x1c\x00\x02"))
    app1 = data.index(b"Exif\x00\x00")  # shorten the EXIF segment's IFD count so entries run off
    cut = bytearray(data)
    cut[app1 + 14:app1 + 16] = b"\x00\x40"
    (tmp_path / "bad_count.jpg").write_bytes(bytes(cut))
    for name in ("bad_type.jpg", "bad_count.jpg"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = load_image(tmp_path / name)
        assert loaded.shape[2] == 3, name
        assert caught == [], [str(w.message) for w in caught]
    assert load_image(tmp_path / "bad_type.jpg").shape[:2] == (64, 48)  # still turned upright


def test_unusual_but_valid_images_show_the_face_upright(images):
    """One ``fervid predict`` over every valid-but-unusual format: each finds the one face where the
    original photo has it. The sideways copy without an EXIF tag does not: the tag is what rotates."""
    names = ["colour16.png", "grey16.png", "cmyk.jpg", "alpha.png", "grey.jpg", "exif_rotated.jpg",
             "sideways_no_exif.jpg"]
    paths = [images[name] for name in names]
    before = digests(*paths)
    result = run_fervid("predict", OBAMA, *paths, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [entry["image"] for entry in document] == [str(OBAMA), *map(str, paths)]
    (reference,) = document[0]["faces"]

    def same_place(face) -> bool:
        return all(abs(a - b) <= 15 for a, b in zip(face["box"], reference["box"]))

    for entry in document[1:-1]:  # Haar may add a false positive elsewhere; the face must be there
        matches = [face for face in entry["faces"] if same_place(face)]
        assert len(matches) == 1, (entry["image"], entry["faces"], reference["box"])
        assert matches[0]["emotion"] == reference["emotion"], entry
    assert not any(same_place(face) for face in document[-1]["faces"]), document[-1]
    assert digests(*paths) == before


def test_predict_reports_a_bad_image_in_one_line_keeps_the_rest_and_touches_no_file(images):
    """A bad image among good ones is one line naming it and an entry with its error; the good
    images' results are all there, exit status 2, and every input file unchanged."""
    paths = [OBAMA, images["cut.png"], TWO_PEOPLE]
    before = digests(*paths)
    result = run_fervid("predict", *paths, "--json")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("fervid predict: error: ") and "cut.png" in line and "truncated" in line
    document = json.loads(result.stdout)
    assert [entry["image"] for entry in document] == list(map(str, paths))
    assert document[1] == {"image": str(images["cut.png"]), "error": line.removeprefix("fervid predict: error: ")}
    assert len(document[0]["faces"]) == 1 and len(document[2]["faces"]) == 2
    assert digests(*paths) == before


@pytest.mark.parametrize("kind", ["named pipe", "device"])
def test_the_loader_refuses_what_is_not_a_regular_file_without_opening_it(tmp_path, kind):
    """Opening a named pipe blocks until something writes to it (``fervid predict`` hung for
    good), and /dev/zero never ends. Run in a child process, so a hang fails the test instead of
    stopping the session."""
    path = tmp_path / "frame.jpg" if kind == "named pipe" else Path("/dev/zero")
    if kind == "named pipe":
        os.mkfifo(path)
    code = ("import sys\nfrom fervid.errors import ImageLoadError\nfrom fervid.media.image_io import load_image\n"
            "try:\n    load_image(sys.argv[1])\nexcept ImageLoadError as exc:\n    print(exc)\n")
    try:
        run = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, text=True, capture_output=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"load_image blocked on a {kind}") from None
    assert run.stdout == f"{path}: is a {kind}, not an image file\n", run.stderr


# -- videos (the service's capture path) -------------------------------------------------------

@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    clip = SAMPLE_CLIP.read_bytes()
    fast = mp4_faststart(clip)
    paths = {"empty.mp4": b"", "cut_index_last.mp4": clip[: len(clip) // 2],
             "cut_index_first.mp4": fast[: len(fast) // 2], "index_first.mp4": fast}
    for name, data in paths.items():
        (folder / name).write_bytes(data)
    writer = cv2.VideoWriter(str(folder / "zero_frames.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    writer.release()  # a valid container holding no frame at all
    # cv2.VideoWriter rounds odd sizes down to even (it wrote 640x478 for 641x479 here), so the odd
    # video is written as a motion-JPEG stream: ffmpeg reads it, and JPEG keeps 641x479.
    face = cv2.resize(cv2.imread(str(OBAMA)), (383, 479))
    frame = np.zeros((479, 641, 3), np.uint8)
    frame[:, 129:512] = face
    jpegs = [cv2.imencode(".jpg", np.roll(frame, shift, axis=1))[1].tobytes() for shift in range(0, 24, 2)]
    (folder / "odd_641x479.mjpeg").write_bytes(b"".join(jpegs))
    return {name: folder / name for name in [*paths, "zero_frames.avi", "odd_641x479.mjpeg"]}


@pytest.mark.parametrize("name, problem", [
    ("empty.mp4", "cannot open {} (empty file)"),
    ("cut_index_last.mp4", "cannot open {} (not a video OpenCV can read"),
    ("zero_frames.avi", "no frames in {}"),
])
def test_unreadable_videos_are_down_with_a_reason_and_never_raise(videos, name, problem):
    """A stream whose file cannot be played is DOWN, says why (shown by ``fervid status``), keeps
    retrying with back-off and never raises into the capture actor; the file is left as it was."""
    before = digests(videos[name])
    source = FrameSource(parse_source(str(videos[name])), pace=False, reconnect_initial_s=0.05,
                         reconnect_max_s=0.1)
    frames, states, errors = drain(source, 1.5)
    assert errors == [] and frames == []
    assert StreamState.DOWN in states and StreamState.UP not in states and StreamState.FINISHED not in states
    assert source.last_error.startswith(problem.format(videos[name])), source.last_error
    assert "\n" not in source.last_error
    assert digests(videos[name]) == before


def test_truncated_video_plays_up_to_the_cut_then_finishes(videos):
    """Cut in half (index first), the clip delivers the frames before the cut, identical to the
    whole file's, then ends normally: FINISHED, no exception."""
    whole = read_all_frames(videos["index_first.mp4"])
    original = read_all_frames(SAMPLE_CLIP)
    assert len(whole) == len(original) == 275
    source = FrameSource(parse_source(str(videos["cut_index_first.mp4"])), pace=False)
    cut, _, errors = drain(source, 60)
    assert errors == []
    assert 100 <= len(cut) < 275, len(cut)
    assert all(np.array_equal(a, b) for a, b in zip(cut, original))
    assert source.state is StreamState.FINISHED


def test_odd_frame_size_video_is_read_and_its_face_found(videos):
    from fervid.models.face_detector import HaarFaceDetector
    from fervid.models.preprocessing import to_grey

    source = FrameSource(parse_source(str(videos["odd_641x479.mjpeg"])), pace=False)
    frames, _, errors = drain(source, 30)
    assert errors == [] and len(frames) == 12 and source.state is StreamState.FINISHED
    assert {frame.shape for frame in frames} == {(479, 641, 3)} and source.frame_size == (641, 479)
    assert len(HaarFaceDetector().detect(to_grey(frames[0]))) == 1


def test_config_naming_a_missing_model_is_refused_when_loaded(tmp_path):
    from fervid.services.config import ConfigError, load_config

    config = tmp_path / "fervid.yaml"
    config.write_text(f"streams:\n  - name: a\n    source: {SAMPLE_CLIP}\ninference:\n  model: gone.keras\n")
    with pytest.raises(ConfigError, match="gone.keras"):
        load_config(config)


# -- FER2013 CSVs ------------------------------------------------------------------------------

BAD_CSVS = [  # (file name, content, what the one error line must say after the path)
    ("wrong_header.csv", "label,pixels,Usage\n" + GOOD_ROW, ":1: expected header"),
    ("pixel_count.csv", HEADER + GOOD_ROW + GOOD_ROW.replace("128 ", "", 1),
     ":3: expected 2304 pixel values, got 2303"),
    ("label_range.csv", HEADER + GOOD_ROW * 2 + GOOD_ROW.replace("3,", "7,", 1), ":4: emotion 7 is outside 0..6"),
    ("label_text.csv", HEADER + GOOD_ROW.replace("3,", "happy,", 1), ":2: emotion 'happy' is not an integer"),
    ("pixel_text.csv", HEADER + GOOD_ROW + GOOD_ROW.replace("128 128", "128 12.5", 1),
     ":3: pixels contain a non-integer"),
    ("pixel_huge.csv", HEADER + GOOD_ROW.replace("128 128", "128 99999999999", 1),
     ":2: pixel values must lie in 0..255"),
]


@pytest.mark.parametrize("name, text, problem", BAD_CSVS, ids=[case[0] for case in BAD_CSVS])
def test_evaluate_names_the_bad_line_of_a_csv(tmp_path, name, text, problem):
    """``fervid evaluate`` reads the data before loading the model, so each run is cheap."""
    path = tmp_path / name
    path.write_text(text)
    before = digests(path)
    assert_one_line_error(run_fervid("evaluate", "--data", path, "--json", timeout=120), f"{path}{problem}")
    assert digests(path) == before


def test_evaluate_with_a_folder_as_data_says_it_is_a_folder(tmp_path):
    """It said "no such file" about a folder that exists."""
    assert_one_line_error(run_fervid("evaluate", "--data", tmp_path, timeout=120),
                          f"{tmp_path}: is a directory, not a CSV file")


def test_evaluate_binary_file_as_csv_is_one_line(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(OBAMA.read_bytes())
    assert_one_line_error(run_fervid("evaluate", "--data", path, timeout=120), "photo.csv", "not a text CSV")


@pytest.mark.parametrize("png, problem", [
    ("no_such_folder/confusion.png", "folder {} does not exist"),
    ("confusion.jpg", "must end in .png"),
])
def test_evaluate_refuses_an_unwritable_confusion_png_before_working(tmp_path, png, problem):
    """Checked before the data and the model are read: the run would otherwise end in a traceback
    after all the work (matplotlib cannot save into a missing folder)."""
    data = tmp_path / "tiny.csv"
    data.write_text(HEADER + GOOD_ROW * 3)
    target = tmp_path / png
    result = run_fervid("evaluate", "--data", data, "--confusion-png", target, timeout=120)
    assert_one_line_error(result, f"--confusion-png {target}", problem.format(target.parent))
    assert not target.exists()


def test_csv_from_a_spreadsheet_is_accepted(tmp_path):
    """A byte-order mark before the header, CRLF line ends and a blank last line are how spreadsheet
    programs and editors save CSVs; none of them is an error."""
    from fervid.training.data import load_fer2013

    path = tmp_path / "saved_by_excel.csv"
    path.write_bytes(("\ufeff" + HEADER + GOOD_ROW * 2 + "\n").replace("\n", "\r\n").encode("utf-8"))
    data = load_fer2013(path)
    assert len(data) == 2 and data.pixels.max() == 128


def test_train_with_a_bad_csv_is_one_line_and_leaves_the_run_folder_alone(tmp_path):
    """An interrupted run in --out must survive a ``fervid train`` that fails on its data."""
    path = tmp_path / "train.csv"
    path.write_text(HEADER + GOOD_ROW.replace("PublicTest", "Training") * 30
                    + GOOD_ROW.replace("3,", "-1,", 1).replace("PublicTest", "Training"))
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "state.json").write_text('{"completed_epochs": 3, "best_score": 0.5}')
    (out / "history.csv").write_text("epoch,accuracy\n0,0.3\n1,0.4\n2,0.5\n")
    before = digests(out, path)
    result = run_fervid("train", "--data", path, "--epochs", "1", "--out", out, timeout=300)
    assert_one_line_error(result, f"{path}:32: emotion -1 is outside 0..6")
    assert digests(out, path) == before


def test_train_with_a_bad_csv_creates_no_run_folder(tmp_path):
    """A run that fails on its data leaves nothing behind: no empty --out to find and clean up later."""
    path = tmp_path / "train.csv"
    path.write_text(HEADER + GOOD_ROW.replace("PublicTest", "Training") * 30 + "3,1 2 3,Training\n")
    out = tmp_path / "new_run"
    result = run_fervid("train", "--data", path, "--epochs", "1", "--out", out, timeout=300)
    assert_one_line_error(result, f"{path}:32:")
    assert not out.exists()


# -- model files -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    shipped = DEFAULT_MODEL_PATH.read_bytes()
    (folder / "truncated.keras").write_bytes(shipped[: len(shipped) // 2])
    flipped = bytearray(shipped)
    middle = len(shipped) // 2
    flipped[middle:middle + 4096] = b"\xab" * 4096  # damaged on disk inside the weights
    (folder / "flipped.keras").write_bytes(bytes(flipped))
    # A valid .keras of another architecture: the shipped network built for 64x64 input. It loads
    # (global pooling takes any size) and would run, on the wrong crops. Made by editing the
    # archive's config, so this test process needs no TensorFlow.
    with zipfile.ZipFile(DEFAULT_MODEL_PATH) as src, zipfile.ZipFile(folder / "input64.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                assert data.count(b'"batch_shape": [null, 48, 48, 1]') >= 1  # the input (and each member's)
                data = data.replace(b'"batch_shape": [null, 48, 48, 1]', b'"batch_shape": [null, 64, 64, 1]')
            dst.writestr(item, data)
    return {name: folder / name for name in ("truncated.keras", "flipped.keras", "input64.keras")}


@pytest.mark.parametrize("name, problem", [
    ("truncated.keras", "corrupt or truncated"),
    ("flipped.keras", "is damaged (bad checksum in model.weights.h5)"),
    ("input64.keras", "wrong architecture: input (64, 64, 1)"),
])
def test_evaluate_with_a_bad_model_is_one_line(tmp_path, models, name, problem):
    data = tmp_path / "tiny.csv"
    data.write_text(HEADER + GOOD_ROW * 3)
    before = digests(models[name])
    result = run_fervid("evaluate", "--data", data, "--model", models[name], "--json", timeout=300)
    assert_one_line_error(result, f"model file {models[name]}", problem)
    assert digests(models[name]) == before
