"""deploy/gpu-training: the candidates' recipes are valid, and packed data is the Training rows exactly."""
import importlib.util
import json

import numpy as np
import pytest

from fervid.training.config import TrainConfig
from fervid.training.data import load_fer2013
from tests.conftest import REPO, SAMPLE_CSV

FOLDER = REPO / "deploy" / "gpu-training"


@pytest.fixture(scope="module")
def driver():
    spec = importlib.util.spec_from_file_location("run_candidates", FOLDER / "run_candidates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_candidate_is_a_valid_recipe_on_the_shipped_validation_slice(driver, tmp_path):
    candidates = json.loads((FOLDER / "candidates.json").read_text())
    for name in candidates["candidates"]:
        config = TrainConfig.parse(driver.recipe(name, candidates, SAMPLE_CSV, None, tmp_path / name, 50))
        assert config.seed == 2013 and config.validation_fraction == 0.1  # the slice models are chosen on


def test_packed_rows_unpack_to_the_same_training_rows(driver, tmp_path):
    """Lossless: the GPU machine trains on exactly the pixels, labels and row order of the CSV."""
    training = load_fer2013(SAMPLE_CSV, usage="Training")
    driver.pack(SAMPLE_CSV, tmp_path / "packed")
    count = driver.unpack(tmp_path / "packed", tmp_path / "unpacked.csv")
    again = load_fer2013(tmp_path / "unpacked.csv", usage="Training")
    assert count == len(training)
    assert np.array_equal(again.pixels, training.pixels) and np.array_equal(again.labels, training.labels)
