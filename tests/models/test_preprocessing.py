import numpy as np
import pytest

from fervid.models.preprocessing import FACE_SIZE, crop_faces, normalise, to_grey


def test_to_grey_accepts_bgr_bgra_and_grey():
    bgr = np.zeros((10, 12, 3), np.uint8)
    bgr[..., 2] = 255  # pure red
    grey = to_grey(bgr)
    assert grey.shape == (10, 12) and grey.dtype == np.uint8
    assert 70 < grey[0, 0] < 80  # 0.299 * 255
    assert to_grey(np.dstack([bgr, np.full((10, 12), 255, np.uint8)])).shape == (10, 12)
    assert to_grey(grey) is grey
    with pytest.raises(ValueError):
        to_grey(np.zeros((4, 4, 2), np.uint8))


def test_crop_faces_resizes_and_clips_boxes_at_the_border():
    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crops = crop_faces(grey, [(10, 10, 20, 20), (90, 90, 30, 30)])
    assert crops.shape == (2, FACE_SIZE, FACE_SIZE) and crops.dtype == np.uint8
    with pytest.raises(ValueError, match="outside"):
        crop_faces(grey, [(200, 200, 10, 10)])


def test_normalise_scales_to_minus_one_one_with_a_channel_axis():
    crops = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], dtype=np.uint8)
    x = normalise(crops)
    assert x.shape == (2, 48, 48, 1) and x.dtype == np.float32
    assert x[0].min() == -1.0 and x[1].max() == 1.0
    with pytest.raises(ValueError):
        normalise(np.zeros((1, 32, 32), np.uint8))
