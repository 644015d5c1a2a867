import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fervid.models import classifier as classifier_module
from fervid.models.classifier import BATCH_BUCKETS, EmotionClassifier, bucket_for
from fervid.models.classifier_paths import DEFAULT_MODEL_PATH, digest_path
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
    together = classifier.predict(crops[:37])  # padded to 64 (at most 2x waste)
    alone = np.concatenate([classifier.predict(crops[i:i + 1]) for i in range(5)])
    assert np.allclose(together[:5], alone, atol=1e-4)
    big = np.concatenate([crops] * 4)[:300]  # more than the largest bucket
    assert np.allclose(classifier.predict(big)[:37], together, atol=1e-4)


def test_bucket_sizes():
    assert [bucket_for(n) for n in (1, 2, 3, 5, 64, 65, 129)] == [1, 2, 4, 8, 64, 128, 256]
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


def test_a_directory_as_model_is_named_a_directory(tmp_path):
    folder = tmp_path / "weights.keras"
    folder.mkdir()
    with pytest.raises(ModelLoadError, match=f"^model file {folder} is a directory, not a .keras file$"):
        EmotionClassifier.load(folder)


def test_the_shipped_digest_is_the_shipped_weights():
    line = digest_path(DEFAULT_MODEL_PATH).read_text(encoding="ascii")
    assert line == f"{hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest()}  {DEFAULT_MODEL_PATH.name}\n"


def with_negated_tensor(source: Path, destination: Path) -> None:
    """Copy a ``.keras`` archive, flipping the sign of every float of one weight tensor in place.

    The HDF5 file keeps its layout and the zip member is rewritten whole, so the archive's CRCs and
    the model's structure stay valid: only the numbers are wrong.
    """
    import h5py

    with zipfile.ZipFile(source) as archive:
        members = {item.filename: archive.read(item) for item in archive.infolist()}
    weights = bytearray(members["model.weights.h5"])
    with h5py.File(io.BytesIO(bytes(weights)), "r") as h5:
        kernels = []
        h5.visititems(lambda name, node: kernels.append(node) if isinstance(node, h5py.Dataset)
                      and name.startswith("layers/") and node.ndim == 4 else None)
        tensor = kernels[-1]  # the last convolution: its weights decide the class scores
        offset, size = tensor.id.get_offset(), tensor.id.get_storage_size()
        assert tensor.dtype == np.float32 and offset is not None and size == tensor.size * 4
    for sign_byte in range(offset + 3, offset + size, 4):  # little-endian float32: sign in the 4th byte
        weights[sign_byte] ^= 0x80
    members["model.weights.h5"] = bytes(weights)
    with zipfile.ZipFile(destination, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_altered_shipped_weights_are_refused(tmp_path, monkeypatch, crops, classifier):
    shipped = tmp_path / "shipped" / DEFAULT_MODEL_PATH.name
    shipped.parent.mkdir()
    with_negated_tensor(DEFAULT_MODEL_PATH, shipped)
    shutil.copy(digest_path(DEFAULT_MODEL_PATH), digest_path(shipped))
    # As a user's --model file the altered archive loads: it is well formed, only its numbers are wrong.
    altered = EmotionClassifier.load(shipped, flip_average=False)
    assert not np.allclose(altered.predict(crops[:8]), EmotionClassifier(classifier.model, False).predict(crops[:8]),
                           atol=1e-3)
    monkeypatch.setattr(classifier_module, "DEFAULT_MODEL_PATH", shipped)
    for path in (None, shipped):  # the default, whether implied or named (the CLI names it)
        with pytest.raises(ModelLoadError) as caught:
            EmotionClassifier.load(path)
        assert str(caught.value) == (f"model file {shipped} does not match its shipped SHA-256 "
                                     f"({shipped.name}.sha256): the shipped weights were altered or damaged; "
                                     f"reinstall fervid")


def test_shipped_weights_without_their_digest_are_refused(tmp_path, monkeypatch):
    shipped = tmp_path / DEFAULT_MODEL_PATH.name
    shutil.copy(DEFAULT_MODEL_PATH, shipped)
    monkeypatch.setattr(classifier_module, "DEFAULT_MODEL_PATH", shipped)
    with pytest.raises(ModelLoadError, match="checksum .*sha256 is missing or unreadable; reinstall fervid$"):
        EmotionClassifier.load()
    shutil.copy(digest_path(DEFAULT_MODEL_PATH), digest_path(shipped))
    assert EmotionClassifier.load().path == shipped


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
