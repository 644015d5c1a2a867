"""Single-process training end to end on a few hundred real FER2013 rows."""
import csv
import json

import pytest

from fervid.models.classifier import EmotionClassifier
from fervid.errors import FervidError
from fervid.training.config import TrainConfig
from fervid.training.trainer import train
from tests.conftest import FERPLUS_SAMPLE, SAMPLE_CSV


def small_config(out, **overrides):
    base = dict(data=SAMPLE_CSV, ferplus=FERPLUS_SAMPLE, out=out, epochs=2, batch_size=64,
                limit=300, width=0.5, warmup_epochs=0)
    return TrainConfig(**{**base, **overrides})


def epochs_logged(out):
    with open(out / "history.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_trains_writes_outputs_and_resumes(tmp_path):
    out = tmp_path / "run"
    summary = train(small_config(out), log=lambda _: None)
    assert summary["completed_epochs"] == 2
    for name in ("best.keras", "history.csv", "curves.png", "config.json"):
        assert (out / name).is_file(), name
    assert epochs_logged(out) == [0, 1]
    EmotionClassifier.load(out / "best.keras")  # the result is a valid fervid model

    # Simulate an interruption after epoch 1: drop the last epoch from the saved state.
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    state["completed_epochs"] = 1
    (out / "checkpoints" / "state.json").write_text(json.dumps(state))
    with open(out / "history.csv") as handle:
        rows = handle.readlines()[:2]
    (out / "history.csv").write_text("".join(rows))
    messages = []
    summary = train(small_config(out), log=messages.append)
    assert any("resuming from epoch 1" in m for m in messages)
    assert summary["completed_epochs"] == 2
    assert epochs_logged(out) == [0, 1]


def test_refuses_to_resume_with_a_different_recipe(tmp_path):
    out = tmp_path / "run"
    train(small_config(out, epochs=1), log=lambda _: None)
    with pytest.raises(FervidError, match="epochs 1 -> 3"):
        train(small_config(out, epochs=3), log=lambda _: None)
    summary = train(small_config(out, epochs=1, resume=False), log=lambda _: None)
    assert summary["completed_epochs"] == 1
