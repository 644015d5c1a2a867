import zipfile

import numpy as np
import pytest

from fervid.models.classifier import BATCH_BUCKETS, EmotionClassifier, bucket_for
from fervid.models.classifier_paths import DEFAULT_MODEL_PATH
from fervid.errors import ModelLoadError
from fervid.training.data import load_fer2013
from tests.conftest import SAMPLE_CSV


@pytest.fixture(scope="module")
def crops():
    return load_fer2013(SAMPLE_CSV, usage="PublicTest").pixels


def test_probabilities_have_seven_classes_and_sum_to_one(classifier, crops):
    probs = classifier.predict(crops[:5])
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert classifier.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_padding_to_buckets_does_not_change_results(classifier, crops):
    """A face's probabilities must not depend on how many other faces share its batch."""
    together = classifier.predict(crops[:37])  # padded to 64
    alone = np.concatenate([classifier.predict(crops[i:i + 1]) for i in range(5)])
    assert np.allclose(together[:5], alone, atol=1e-4)
    big = np.concatenate([crops] * 4)[:300]  # more than the largest bucket
    assert np.allclose(classifier.predict(big)[:37], together, atol=1e-4)


def test_bucket_sizes():
    assert [bucket_for(n) for n in (1, 2, 5, 64, 65)] == [1, 4, 16, 64, 256]
    with pytest.raises(ValueError):
        bucket_for(BATCH_BUCKETS[-1] + 1)


def test_flip_average_uses_the_mirrored_face(crops):
    plain = EmotionClassifier.load(flip_average=False)
    averaged = EmotionClassifier.load(flip_average=True)
    expected = (plain.predict(crops[:4]) + plain.predict(crops[:4, :, ::-1])) / 2
    assert np.allclose(averaged.predict(crops[:4]), expected, atol=1e-4)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        EmotionClassifier.load(tmp_path / "nope.keras")


def test_truncated_model_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(DEFAULT_MODEL_PATH.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        EmotionClassifier.load(broken)


def test_text_file_as_model_is_a_clear_error(tmp_path):
    text = tmp_path / "model.keras"
    text.write_text("not a model")
    with pytest.raises(ModelLoadError):
        EmotionClassifier.load(text)


def test_damaged_archive_is_a_clear_error(tmp_path):
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(DEFAULT_MODEL_PATH) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith(".h5"):  # drop the weights
                dst.writestr(item, src.read(item))
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        EmotionClassifier.load(damaged)


def test_wrong_architecture_is_a_clear_error(tmp_path):
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    path = tmp_path / "three_classes.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelLoadError, match="wrong architecture"):
        EmotionClassifier.load(path)
