"""The ``fervid`` command line, run as a real subprocess: JSON contracts and one-line errors."""
import json

import numpy as np
import pytest

from fervid.models.labels import EMOTIONS
from tests.conftest import OBAMA, SAMPLE_CSV, SHARED, run_fervid

FULL_FER = SHARED / "fer2013" / "fer2013_train_publictest.csv.gz"


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


def test_predict_json_finds_one_face_with_seven_probabilities():
    result = run_fervid("predict", OBAMA, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout holds exactly one JSON document
    assert len(document) == 1 and document[0]["image"] == str(OBAMA)
    (face,) = document[0]["faces"]
    assert list(face["probabilities"]) == list(EMOTIONS)
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    assert len(face["box"]) == 4


def test_predict_text_file_is_a_one_line_error_and_an_error_entry(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    result = run_fervid("predict", text, "--json")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"fervid predict: error: {text}: not an image (or an unsupported format)"]
    assert json.loads(result.stdout) == [{"image": str(text), "error": f"{text}: not an image (or an unsupported format)"}]


def test_errors_stay_one_line_without_the_test_sessions_tensorflow_settings(tmp_path):
    """The suite turns oneDNN off for itself; a user's shell does not, and TensorFlow then prints a
    banner on stderr at import. The command's own setting must keep stderr to the one error line."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run([sys.executable, "-m", "fervid.cli.main", "predict", str(OBAMA), str(text)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"fervid predict: error: {text}: not an image (or an unsupported format)"]
    assert "1 face" in result.stdout


def test_predict_missing_model_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_fervid("predict", OBAMA, "--model", tmp_path / "gone.keras"),
                          "model file", "not found")


def test_evaluate_json_structure_on_the_sample(tmp_path):
    png = tmp_path / "confusion.png"
    result = run_fervid("evaluate", "--data", SAMPLE_CSV, "--split", "PublicTest", "--json",
                        "--confusion-png", png)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 80 and 0 <= report["accuracy"] <= 1
    assert list(report["per_class"]) == list(EMOTIONS)
    assert len(report["confusion"]) == 7 and all(len(row) == 7 for row in report["confusion"])
    assert sum(map(sum, report["confusion"])) == 80
    assert png.stat().st_size > 1000


def test_evaluate_validation_slice_is_the_rows_training_held_out():
    """Models are chosen on this slice: it must be exactly what ``fervid train`` leaves out by default."""
    from fervid.training.config import TrainConfig
    from fervid.training.data import load_fer2013
    from fervid.training.trainer import prepare_data

    held_out = prepare_data(TrainConfig(data=SAMPLE_CSV, out="unused")).y_val
    result = run_fervid("evaluate", "--data", SAMPLE_CSV, "--validation-slice", "--json", "--no-flip")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == len(held_out) < len(load_fer2013(SAMPLE_CSV, usage="Training"))
    counts = np.asarray(report["confusion"]).sum(axis=1)
    assert counts.tolist() == held_out.sum(axis=0).astype(int).tolist()  # the same rows, class by class
    assert_one_line_error(run_fervid("evaluate", "--data", SAMPLE_CSV, "--validation-slice", "--split",
                                     "PublicTest"), "not allowed with argument")


def test_evaluate_truncated_csv_names_the_problem(tmp_path):
    cut = tmp_path / "cut.csv"
    cut.write_text("emotion,pixels,Usage\n0,1 2 3")
    assert_one_line_error(run_fervid("evaluate", "--data", cut), "cut.csv:2", "expected 3 columns")


def test_evaluate_splits_by_any_usage_name(tmp_path):
    """A file of one's own in FER2013's format, with split names of its own: --split selects by them."""
    import gzip

    lines = gzip.decompress(SAMPLE_CSV.read_bytes()).decode().splitlines()
    own = tmp_path / "own.csv"
    own.write_text("\n".join([lines[0]] + [line.replace(",PublicTest", ",holdout-2026") for line in lines[1:]]))
    result = run_fervid("evaluate", "--data", own, "--split", "holdout-2026", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 80
    assert_one_line_error(run_fervid("evaluate", "--data", own, "--split", "PublicTest"),
                          "no rows with Usage 'PublicTest'", "(its Usage values: Training, holdout-2026)")


def test_train_bad_flags_are_one_line_errors():
    assert_one_line_error(run_fervid("train", "--data", SAMPLE_CSV, "--epochs", "0"), "--epochs")


@pytest.mark.skipif(not FULL_FER.is_file(), reason="shared FER2013 data is not beside the repo")
def test_shipped_model_reaches_66_percent_on_publictest():
    """The model card's figure, measured by the project's own command on unseen data."""
    result = run_fervid("evaluate", "--data", FULL_FER, "--split", "PublicTest", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 3589
    assert report["accuracy"] >= 0.66
