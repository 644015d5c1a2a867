import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models.errors import ImageLoadError
from models.image_io import load_image
from tests.conftest import OBAMA


def _png_header_only(path, width, height):
    """A tiny PNG that claims to be width x height (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def test_real_photo_loads_as_bgr():
    image = load_image(OBAMA)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[:2] == (1137, 910)


@pytest.mark.parametrize("content, message", [
    (b"", "not an image"),
    (b"hello, I am a text file\n", "not an image"),
])
def test_non_images_are_refused(tmp_path, content, message):
    path = tmp_path / "file.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=message):
        load_image(path)


def test_truncated_jpeg_is_refused(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(OBAMA.read_bytes()[:20000])
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    assert path.stat().st_size < 200
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P", "LA"])
def test_unusual_pixel_formats_become_bgr(tmp_path, mode):
    array = (np.arange(40 * 30) % 256).reshape(30, 40).astype(np.uint8)
    if mode == "I;16":
        image = Image.fromarray(array.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(array).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"image{suffix}"
    image.save(path)
    loaded = load_image(path)
    assert loaded.shape == (30, 40, 3) and loaded.dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(path).shape[:2] == (60, 20)


def test_bytes_input():
    assert load_image(OBAMA.read_bytes()).shape[:2] == (1137, 910)
