import numpy as np

from fervid.models.faces import Faces
from fervid.models.labels import EMOTIONS
from fervid.models.recognizer import Recognizer
from tests.conftest import OBAMA, TWO_PEOPLE


def test_recognises_each_face_with_a_probability_per_class(classifier):
    recognizer = Recognizer(classifier)
    result = recognizer.recognise_file(TWO_PEOPLE)
    faces = result.faces
    assert len(faces) == 2 and faces.boxes.shape == (2, 4) and faces.probabilities.shape == (2, 7)
    assert np.allclose(faces.probabilities.sum(axis=1), 1, atol=1e-4)
    assert faces.emotions == [EMOTIONS[int(i)] for i in np.argmax(faces.probabilities, axis=1)]
    document = result.to_dict()
    assert document["image"] == str(TWO_PEOPLE) and len(document["faces"]) == 2
    assert all(set(face["probabilities"]) == set(EMOTIONS) for face in document["faces"])


def test_smiling_portrait_is_happy(classifier):
    """obama.jpg shows a broad smile; a working model must say so."""
    assert Recognizer(classifier).recognise_file(OBAMA).faces.emotions == ["happy"]
