import json

import numpy as np

from fervid.training.data import load_fer2013
from fervid.training.evaluate import evaluate, report_from_predictions
from tests.conftest import SAMPLE_CSV


def test_report_counts_confusions_and_recall():
    labels = np.array([0, 0, 3, 3, 6])
    predicted = np.array([0, 3, 3, 3, 0])
    report = report_from_predictions(labels, predicted)
    assert report.accuracy == 3 / 5 and report.n == 5
    assert report.confusion[0, 3] == 1 and report.confusion[6, 0] == 1
    assert report.per_class["angry"] == 0.5 and report.per_class["happy"] == 1.0
    assert report.per_class["fear"] is None  # no fear samples: undefined, and NaN is not JSON
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["per_class"]["fear"] is None
    table = report.format_table()
    assert "accuracy 0.6000" in table and "fear      n/a (no samples)" in table


def test_shipped_model_beats_chance_clearly_on_unseen_sample(classifier):
    data = load_fer2013(SAMPLE_CSV, usage="PublicTest")
    report = evaluate(classifier, data.pixels, data.labels, batch_size=32)
    assert report.n == 80
    assert report.confusion.sum() == 80
    assert report.accuracy > 0.5  # chance is ~0.25 (always "happy")
