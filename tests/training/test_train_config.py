"""``TrainConfig``: the one validated training recipe of the CLI, the trainer and the Ray Train workers."""
import json
import math
import pickle
from pathlib import Path

import pytest

from fervid.training.config import TrainConfig, TrainConfigError
from tests.conftest import SAMPLE_CSV


def parse(tmp_path, **values):
    return TrainConfig.parse({"data": SAMPLE_CSV, "out": tmp_path / "run", **values})


@pytest.mark.parametrize("key, value, problem", [
    ("learning_rate", -1.0, "learning_rate -1.0: must be greater than 0"),
    ("learning_rate", math.nan, "learning_rate nan: must be a finite number"),
    ("label_smoothing", 5.0, "label_smoothing 5.0: must be less than 1"),
    ("ferplus_weight", 1.5, "ferplus_weight 1.5: must be less than or equal to 1"),
    ("augment", math.inf, "augment inf: must be a finite number"),
    ("erasing", 1.5, "erasing 1.5: must be less than or equal to 1"),
    ("mixup", -0.2, "mixup -0.2: must be greater than or equal to 0"),
    ("epochs", 0, "epochs 0: must be greater than or equal to 1"),
    ("epochs", 2.5, "epochs 2.5: must be a valid integer"),
    ("epochs", "5", "epochs '5': must be a valid integer"),
    ("batch_size", True, "batch_size True: must be a valid integer"),
    ("use_gpu", 1, "use_gpu 1: must be a valid boolean"),
    ("width", 0.0, "width 0.0: must be greater than 0"),
    ("limit", 5, "limit 5: must be at least 20 rows (a validation slice is split off)"),
    ("validation_fraction", 1.0, "validation_fraction 1.0: must be less than 1"),
    ("seed", -1, "seed -1: must be greater than or equal to 0"),
    ("extra", {}, "unknown key 'extra'"),
    ("learning_rte", 0.1, "unknown key 'learning_rte'"),
])
def test_each_bad_setting_is_one_line_naming_the_key_and_value(tmp_path, key, value, problem):
    with pytest.raises(TrainConfigError) as caught:
        parse(tmp_path, **{key: value})
    assert str(caught.value) == problem


def test_the_caller_names_the_settings_and_further_problems_are_counted(tmp_path):
    with pytest.raises(TrainConfigError) as caught:
        TrainConfig.parse({"data": SAMPLE_CSV, "out": tmp_path, "learning_rate": -1.0, "epochs": 0},
                          name=lambda key: "--" + key)
    assert str(caught.value) == "--epochs 0: must be greater than or equal to 1 (and 1 more problem)"
    with pytest.raises(TrainConfigError, match="^data is required$"):
        TrainConfig.parse({})


def test_an_out_that_cannot_be_a_run_folder_is_refused_and_nothing_is_created(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(TrainConfigError, match=f"^out {a_file}: is a file, not a folder$"):
        parse(tmp_path, out=a_file)
    with pytest.raises(TrainConfigError, match=f"^out {a_file / 'run'}: {a_file} is a file, not a folder$"):
        parse(tmp_path, out=a_file / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_valid_recipe_round_trips_through_config_json_and_pickle(tmp_path):
    config = parse(tmp_path, out=str(tmp_path / "run"), epochs=3, learning_rate=1e-3)
    assert config.out == tmp_path / "run" and isinstance(config.out, Path)
    saved = json.loads(config.to_json())
    assert saved["epochs"] == 3 and saved["out"] == str(tmp_path / "run") and "extra" not in saved
    assert TrainConfig.parse(saved) == config  # config.json is itself a valid recipe
    assert pickle.loads(pickle.dumps(config)) == config  # how the Ray Train workers receive it
    with pytest.raises(Exception):
        config.epochs = 4  # frozen: the recipe a run started with cannot drift
