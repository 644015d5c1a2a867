"""The image loader's conversions; its refusals (empty, text, truncated, decompression bombs) are
in tests/reliability/test_bad_input.py with the rest of the bad-input matrix."""

import numpy as np
import pytest
from PIL import Image

from fervid.errors import ImageLoadError
from fervid.media.image_io import load_image
from tests.conftest import OBAMA


def test_real_photo_loads_as_bgr():
    image = load_image(OBAMA)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[:2] == (1137, 910)


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
