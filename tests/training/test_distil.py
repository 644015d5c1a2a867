"""Distillation: the teacher's probabilities blended into the training targets."""
import numpy as np
import pytest

from fervid.errors import ModelLoadError
from fervid.models.classifier import EmotionClassifier
from fervid.models.classifier_paths import DEFAULT_MODEL_PATH
from fervid.training.config import TrainConfig
from fervid.training.data import load_fer2013, validation_mask
from fervid.training.targets import blend_ferplus, blend_teacher, soften
from fervid.training.trainer import prepare_data
from tests.conftest import FERPLUS_SAMPLE, SAMPLE_CSV


def test_soften_is_a_tempered_softmax_of_the_log_probabilities():
    p = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0]], dtype=np.float32)
    assert np.allclose(soften(p, 1.0), p)
    warm = soften(p, 2.0)
    expected = np.sqrt(p) / np.sqrt(p).sum()
    assert np.allclose(warm, expected, atol=1e-6)
    assert np.allclose(warm.sum(axis=1), 1) and warm.argmax() == 0 and warm[0, 0] < p[0, 0]
    assert np.allclose(soften(p, 0.5).sum(axis=1), 1) and soften(p, 0.5)[0, 0] > p[0, 0]


def test_blend_teacher_mixes_rows_and_checks_shapes():
    targets = np.eye(7, dtype=np.float32)[[0, 3]]
    teacher = np.full((2, 7), 1 / 7, dtype=np.float32)
    mixed = blend_teacher(targets, teacher, 0.7)
    assert np.allclose(mixed[0, 0], 0.3 + 0.1) and np.allclose(mixed[0, 1], 0.1)
    assert np.allclose(mixed.sum(axis=1), 1)
    assert np.array_equal(blend_teacher(targets, teacher, 0), targets)
    with pytest.raises(ValueError, match="do not match"):
        blend_teacher(targets, teacher[:1], 0.5)


def test_prepare_data_blends_the_teachers_probabilities_into_training_targets_only():
    config = dict(data=SAMPLE_CSV, ferplus=FERPLUS_SAMPLE, limit=200, ferplus_weight=0.3, out="unused")
    plain = prepare_data(TrainConfig(**config), log=lambda _: None)
    messages = []
    distilled = prepare_data(TrainConfig(**config, teacher=DEFAULT_MODEL_PATH, teacher_weight=0.6,
                                         teacher_temperature=2.0), log=messages.append)
    assert any("teacher" in m and "images in" in m for m in messages)
    assert np.array_equal(distilled.y_val, plain.y_val)  # validation stays the FER2013 labels
    assert np.array_equal(distilled.x_train, plain.x_train)

    # Recompute the expected targets from their parts, independently of prepare_data.
    data = load_fer2013(SAMPLE_CSV, usage="Training", limit=200)
    train_rows = ~validation_mask(data.labels, 0.1, 2013)
    probs = EmotionClassifier.load(DEFAULT_MODEL_PATH, flip_average=True).predict(data.pixels[train_rows])
    expected = 0.4 * plain.y_train + 0.6 * soften(probs, 2.0)
    assert np.allclose(distilled.y_train, expected, atol=1e-5)
    assert np.allclose(distilled.y_train.sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(distilled.y_train, plain.y_train)


def test_a_teacher_that_is_not_a_model_is_refused_before_the_data_is_read(tmp_path):
    not_a_model = tmp_path / "teacher.keras"
    not_a_model.write_text("not a zip")
    config = TrainConfig(data=tmp_path / "no-such.csv", teacher=not_a_model, out=tmp_path / "run")
    with pytest.raises(ModelLoadError, match="not a Keras .keras archive"):
        prepare_data(config, log=lambda _: None)
    assert not (tmp_path / "run").exists()
