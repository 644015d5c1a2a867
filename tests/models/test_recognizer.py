import numpy as np

from fervid.models.labels import EMOTIONS
from fervid.models.recognizer import Recognizer
from fervid.models.results import FaceExpression
from tests.conftest import OBAMA, TWO_PEOPLE


def test_recognises_each_face_with_a_probability_per_class(classifier):
    recognizer = Recognizer(classifier)
    result = recognizer.recognise_file(TWO_PEOPLE)
    assert len(result.faces) == 2
    for face in result.faces:
        assert set(face.to_dict()["probabilities"]) == set(EMOTIONS)
        assert abs(sum(face.probabilities) - 1) < 1e-4
        assert face.emotion == EMOTIONS[int(np.argmax(face.probabilities))]


def test_smiling_portrait_is_happy(classifier):
    """obama.jpg shows a broad smile; a working model must say so."""
    faces = Recognizer(classifier).recognise_file(OBAMA).faces
    assert [f.emotion for f in faces] == ["happy"]


def test_face_round_trips_through_its_dict():
    face = FaceExpression(box=(1, 2, 3, 4), probabilities=(0.1, 0, 0, 0.6, 0.1, 0.1, 0.1))
    again = FaceExpression.from_dict(face.to_dict())
    assert again.box == face.box and again.emotion == "happy"
    assert np.allclose(again.probabilities, face.probabilities)
