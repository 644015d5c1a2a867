"""``inference_call``: the frozen graph gives predict_on_batch's numbers at every batch size."""
import numpy as np
import pytest

from fervid.models.classifier import EmotionClassifier
from fervid.models.inference_call import FROZEN, PREDICT_ON_BATCH, best_call, named_call
from fervid.models.preprocessing import normalise
from fervid.training.data import load_fer2013
from tests.conftest import SAMPLE_CSV


@pytest.fixture(scope="module")
def batch():
    return normalise(load_fer2013(SAMPLE_CSV, usage="PublicTest").pixels[:70])


def test_tensorflow_serves_the_frozen_graph(classifier):
    name, _ = best_call(classifier.model)
    assert name == FROZEN
    assert EmotionClassifier(classifier.model).call_path == FROZEN


@pytest.mark.parametrize("size", [1, 3, 64, 70])
def test_frozen_graph_equals_predict_on_batch(classifier, batch, size):
    frozen = named_call(classifier.model, FROZEN)(batch[:size])
    plain = named_call(classifier.model, PREDICT_ON_BATCH)(batch[:size])
    assert frozen.shape == plain.shape == (size, 7) and frozen.dtype == np.float32
    assert np.allclose(frozen, plain, atol=1e-5)


def test_a_classifier_on_either_call_path_predicts_the_same(classifier):
    crops = load_fer2013(SAMPLE_CSV, usage="PublicTest").pixels[:9]
    plain = EmotionClassifier(classifier.model, flip_average=True, call_path=PREDICT_ON_BATCH)
    assert plain.call_path == PREDICT_ON_BATCH
    assert np.allclose(EmotionClassifier(classifier.model, flip_average=True).predict(crops), plain.predict(crops),
                       atol=1e-5)


def test_an_unknown_call_path_is_refused(classifier):
    with pytest.raises(ValueError, match="call path must be one of"):
        EmotionClassifier(classifier.model, call_path="onnx")
