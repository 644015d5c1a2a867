"""``--json``: stdout holds exactly one strict JSON document, whatever else the command prints,
and a bad input among good ones costs only its own entry."""
from __future__ import annotations

import json
import os

from fervid.models.labels import EMOTIONS
from tests.conftest import OBAMA, SAMPLE_CSV, TWO_PEOPLE, run_fervid

HEADER = "emotion,pixels,Usage\n"
HAPPY_ROW = "3," + " ".join(["128"] * 2304) + ",PublicTest\n"


def strict_json(text: str):
    """Parse as a strict reader would: NaN and Infinity are not JSON."""
    def refuse(token: str):
        raise ValueError(f"{token} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def test_train_json_is_the_only_thing_on_stdout(tmp_path):
    """Keras printed its progress line on stdout before the document."""
    out = tmp_path / "run"
    result = run_fervid("train", "--data", SAMPLE_CSV, "--limit", "40", "--epochs", "1", "--width", "0.25",
                        "--batch-size", "16", "--out", out, "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = strict_json(result.stdout)  # the whole of stdout is one document
    assert summary["completed_epochs"] == 1 and summary["best_model"] == str(out / "best.keras")
    assert "val_accuracy" in result.stderr  # the progress went to stderr instead


def test_evaluate_json_gives_null_recall_for_a_class_without_samples(tmp_path):
    """Recall of a class with no samples is undefined: it was printed as NaN, which no strict
    JSON reader accepts."""
    data = tmp_path / "happy_only.csv"
    data.write_text(HEADER + HAPPY_ROW * 3)
    result = run_fervid("evaluate", "--data", data, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    report = strict_json(result.stdout)
    assert report["n"] == 3 and list(report["per_class"]) == list(EMOTIONS)
    assert [name for name, recall in report["per_class"].items() if recall is None] == \
        [name for name in EMOTIONS if name != "happy"]
    assert 0 <= report["per_class"]["happy"] <= 1


def test_predict_reports_every_good_image_and_each_bad_one(tmp_path):
    """A bad image among good ones threw the good ones' results away. Now: every image has its
    entry, a bad one with its reason, one stderr line per failure, and exit status 2."""
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    missing = tmp_path / "gone.jpg"
    images = [OBAMA, text, TWO_PEOPLE, missing]
    result = run_fervid("predict", *images, "--json", timeout=300)
    assert result.returncode == 2
    document = strict_json(result.stdout)
    assert [entry["image"] for entry in document] == [str(path) for path in images]
    assert len(document[0]["faces"]) == 1 and len(document[2]["faces"]) == 2
    assert document[1] == {"image": str(text), "error": f"{text}: not an image (or an unsupported format)"}
    assert document[3] == {"image": str(missing), "error": f"{missing}: no such file"}
    assert result.stderr.splitlines() == [f"fervid predict: error: {document[1]['error']}",
                                          f"fervid predict: error: {document[3]['error']}"]

    text_mode = run_fervid("predict", OBAMA, text, timeout=300)
    assert text_mode.returncode == 2
    assert text_mode.stdout.startswith(f"{OBAMA}: 1 face(s)\n  box=")
    assert text_mode.stderr.splitlines() == [f"fervid predict: error: {document[1]['error']}"]


def test_predict_refuses_a_named_pipe_and_a_device_instead_of_hanging(tmp_path):
    """Opening a named pipe blocked until a writer came, forever; /dev/zero never ends."""
    pipe = tmp_path / "camera.jpg"
    os.mkfifo(pipe)
    result = run_fervid("predict", pipe, "/dev/zero", "--json", timeout=120)
    assert result.returncode == 2
    assert strict_json(result.stdout) == [{"image": str(pipe), "error": f"{pipe}: is a named pipe, not an image file"},
                                          {"image": "/dev/zero", "error": "/dev/zero: is a device, not an image file"}]
    assert len(result.stderr.splitlines()) == 2
