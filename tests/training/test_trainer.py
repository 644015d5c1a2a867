"""Single-process training end to end on a few hundred real FER2013 rows."""
import csv
import io
import json
import zipfile

import h5py

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


def weight_groups(model_file):
    """Top-level groups of a .keras archive's weights file."""
    with zipfile.ZipFile(model_file) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        return sorted(weights.keys())


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
    assert weight_groups(out / "best.keras") == ["layers", "vars"]  # no optimizer moments (3x the size)
    assert "optimizer" in weight_groups(out / "checkpoints" / "last.keras")  # the resumable state keeps them

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


def test_a_run_saved_before_erasing_and_mixup_existed_resumes_with_them_off(tmp_path):
    """config.json of an older run lacks the newer settings; their defaults were in force then."""
    out = tmp_path / "run"
    train(small_config(out, epochs=1), log=lambda _: None)
    saved = json.loads((out / "config.json").read_text())
    del saved["erasing"], saved["mixup"]
    (out / "config.json").write_text(json.dumps(saved))
    messages = []
    train(small_config(out, epochs=1), log=messages.append)
    assert any("already holds a finished run" in m for m in messages)
    with pytest.raises(FervidError, match="erasing 0.0 -> 0.5"):
        train(small_config(out, epochs=1, erasing=0.5), log=lambda _: None)


def test_epochs_prepared_in_the_background_are_the_epochs_prepared_in_turn():
    """The GPU path prepares the next epoch in a thread; it must train on exactly the same arrays."""
    import numpy as np

    from fervid.training.trainer import EpochPreparer, PreparedData

    rng = np.random.default_rng(0)
    data = PreparedData(x_train=rng.integers(0, 256, (40, 48, 48), dtype=np.uint8),
                        y_train=np.eye(7, dtype=np.float32)[np.arange(40) % 7],
                        x_val=np.zeros((1, 48, 48, 1), np.float32), y_val=np.eye(7)[:1])
    config = small_config("unused", erasing=0.5, mixup=0.2)
    in_turn, background = EpochPreparer(data, config, False), EpochPreparer(data, config, True)
    for epoch in range(3):
        nxt = epoch + 1 if epoch < 2 else None
        a, b = in_turn.get(epoch, nxt), background.get(epoch, nxt)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not background._pending  # nothing prepared beyond the last epoch
    in_turn.close(), background.close()
