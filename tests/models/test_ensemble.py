"""An ensemble is one .keras file whose output is the mean of its members' (issue 18)."""
import keras
import numpy as np
import pytest

from fervid.errors import ModelLoadError
from fervid.models.classifier import EmotionClassifier
from fervid.models.ensemble import build_ensemble, save_ensemble
from fervid.models.mini_xception import build_mini_xception
from tests.conftest import run_fervid


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two small, differently initialised Mini-Xceptions saved as model files."""
    folder = tmp_path_factory.mktemp("members")
    paths = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = build_mini_xception(width=0.25)
        path = folder / f"m{seed}.keras"
        model.save(path)
        paths.append(path)
    return paths


def test_the_saved_ensemble_predicts_the_mean_of_its_members(members, tmp_path):
    out = tmp_path / "ensemble.keras"
    parameters = save_ensemble(members, out)
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    singles = [EmotionClassifier.load(path, flip_average=False).predict(crops) for path in members]
    assert not np.allclose(singles[0], singles[1], atol=1e-3)  # the members differ
    ensemble = EmotionClassifier.load(out, flip_average=False)
    assert np.allclose(ensemble.predict(crops), np.mean(singles, axis=0), atol=1e-5)
    assert parameters == sum(EmotionClassifier.load(p).model.count_params() for p in members)


def test_one_model_is_not_an_ensemble(members):
    with pytest.raises(ModelLoadError, match="at least 2 models, got 1"):
        build_ensemble([EmotionClassifier.load(members[0]).model])


def test_fervid_ensemble_writes_one_file_and_refuses_bad_input_in_one_line(members, tmp_path):
    out = tmp_path / "pair.keras"
    result = run_fervid("ensemble", *members, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    assert '"members"' in result.stdout and out.is_file()
    for args, fragment in [((*members, "--out", out), "already exists"),
                           ((*members, "--out", tmp_path / "pair.h5"), "must end in .keras"),
                           ((members[0], tmp_path / "gone.keras", "--out", tmp_path / "x.keras"), "not found")]:
        bad = run_fervid("ensemble", *args)
        lines = [line for line in bad.stderr.splitlines() if line.strip()]
        assert bad.returncode == 2 and len(lines) == 1 and fragment in lines[0], bad.stderr
