import numpy as np
import pytest

from fervid.models.face_detector import DetectorParams, HaarFaceDetector
from fervid.media.image_io import load_image
from tests.conftest import OBAMA, TWO_PEOPLE


def test_finds_the_one_face_in_a_portrait():
    image = load_image(OBAMA)
    boxes = HaarFaceDetector().detect(image)
    assert boxes.shape == (1, 4)
    x, y, w, h = boxes[0]
    assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
    assert w > 100  # a portrait's face is large


def test_finds_two_faces_and_downscale_maps_boxes_back():
    image = load_image(TWO_PEOPLE)
    full = HaarFaceDetector().detect(image)
    half = HaarFaceDetector(DetectorParams(downscale=0.5)).detect(image)
    assert len(full) == 2 and len(half) == 2
    # Boxes found on the half-size image are reported in full-size pixels, near the full-size ones.
    full_centres = sorted((x + w / 2, y + h / 2) for x, y, w, h in full)
    half_centres = sorted((x + w / 2, y + h / 2) for x, y, w, h in half)
    assert np.allclose(full_centres, half_centres, atol=25)


def test_blank_image_has_no_faces():
    assert HaarFaceDetector().detect(np.full((200, 200), 128, np.uint8)).shape == (0, 4)


@pytest.mark.parametrize("kwargs", [{"scale_factor": 1.0}, {"min_neighbors": -1},
                                    {"min_size": 0}, {"downscale": 0}, {"downscale": 1.5}])
def test_rejects_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        DetectorParams(**kwargs)
