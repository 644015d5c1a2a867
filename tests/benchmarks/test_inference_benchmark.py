"""``benchmarks.inference``: one real quick run end to end, and its pure helpers on known inputs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fervid.benchmarks.inference import QUICK_BATCH_SIZES, BASELINE_NAME, saturation_batch

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[dict, Path, Path]:
    """``--quick --json --out --plot`` in a subprocess: stdout must be exactly one JSON document."""
    folder = tmp_path_factory.mktemp("inference")
    out, png = folder / "result.json", folder / "result.png"
    done = subprocess.run([sys.executable, "-m", "fervid.benchmarks.inference", "--quick", "--json",
                           "--out", str(out), "--plot", str(png)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), out, png


def test_every_quick_batch_size_is_measured(quick_run):
    result, _, _ = quick_run
    from fervid.services.config import InferenceConfig

    default = InferenceConfig().max_batch
    assert result["default_batch"] == default
    sizes = [entry["batch_size"] for entry in result["batches"]]
    assert sizes == sorted(set(QUICK_BATCH_SIZES) | {default})
    assert result["parameters"]["batch_sizes"] == sizes
    for entry in result["batches"]:
        assert entry["faces_per_s"] > 0 and entry["median_s_per_call"] > 0 and entry["ms_per_face"] > 0
        assert entry["padded_to"] >= entry["batch_size"]
        assert entry["speedup"] == pytest.approx(entry["faces_per_s"] / result["baseline"]["faces_per_s"],
                                                 abs=1e-3)


def test_baseline_and_ratios_are_computed_from_the_reported_numbers(quick_run):
    result, _, _ = quick_run
    baseline = result["baseline"]
    assert baseline["name"] == BASELINE_NAME and baseline["calls"] > 0 and baseline["faces_per_s"] > 0
    rates = {entry["batch_size"]: entry["faces_per_s"] for entry in result["batches"]}
    assert result["speedup_at_default_batch"] == pytest.approx(
        rates[result["default_batch"]] / baseline["faces_per_s"], abs=1e-3)
    assert result["saturation_batch"] in rates
    assert result["saturation_batch"] == saturation_batch(rates)
    assert result["best_faces_per_s"] == max(rates.values())


def test_machine_backend_and_parameters_are_reported(quick_run):
    result, _, _ = quick_run
    assert result["backend"] == result["machine"]["keras_backend"]
    assert result["devices"] is None or all(isinstance(device, str) for device in result["devices"])
    assert result["parameters"]["quick"] is True and result["parameters"]["flip_average"] is False
    assert result["parameters"]["crops"].endswith("fer2013_sample.csv.gz")


def test_out_file_equals_stdout_and_plot_is_a_png(quick_run):
    result, out, png = quick_run
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert png.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(("rates", "expected"), [
    ({1: 100.0, 4: 250.0, 16: 300.0, 64: 310.0}, 16),  # 300 >= 0.9 * 310 = 279
    ({1: 100.0, 4: 280.0, 16: 300.0, 64: 310.0}, 4),  # 280 is within 10% too
    ({1: 100.0, 4: 278.0, 16: 310.0, 64: 250.0}, 16),  # the best need not be the largest
    ({1: 50.0}, 1),
    ({1: 89.0, 2: 91.0, 4: 100.0}, 2),  # 9% below the best counts, 11% does not
])
def test_saturation_batch_is_the_smallest_size_within_ten_percent_of_the_best(rates, expected):
    assert saturation_batch(rates) == expected


def test_saturation_batch_needs_measurements():
    with pytest.raises(ValueError):
        saturation_batch({})


@pytest.mark.parametrize(("content", "expected"), [
    (None, "fervid.benchmarks.inference: error: --crops {path} not found"),
    ("a,b\n", "fervid.benchmarks.inference: error: --crops {path}: {path}:1: expected header"),
])
def test_crops_that_cannot_be_read_are_one_line_errors(tmp_path, content, expected):
    path = tmp_path / "crops.csv"
    if content is not None:
        path.write_text(content)
    done = subprocess.run([sys.executable, "-m", "fervid.benchmarks.inference", "--quick", "--json",
                           "--crops", str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()  # refused before Keras (and its log lines) is imported
    assert len(lines) == 1 and lines[0].startswith(expected.format(path=path)), done.stderr


def test_compared_models_are_timed_at_every_batch_size_with_the_shipped_models_ratio(quick_run, tmp_path):
    assert quick_run[0]["compared"] == []  # only when asked
    from fervid.models.mini_xception import build_mini_xception

    small = tmp_path / "small.keras"
    build_mini_xception(width=0.25).save(small)
    done = subprocess.run([sys.executable, "-m", "fervid.benchmarks.inference", "--quick", "--json",
                           "--compare", str(small)], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    [other] = result["compared"]
    assert other["model"] == str(small)
    shipped = {entry["batch_size"]: entry["faces_per_s"] for entry in result["batches"]}
    assert [entry["batch_size"] for entry in other["batches"]] == list(shipped)
    for entry in other["batches"]:
        assert entry["faces_per_s"] > 0 and entry["calls"] > 0
        assert entry["shipped_over_this"] == pytest.approx(shipped[entry["batch_size"]] / entry["faces_per_s"],
                                                           abs=1e-3)


def test_a_compared_file_that_is_no_model_is_a_one_line_error(tmp_path):
    missing = tmp_path / "missing.keras"
    done = subprocess.run([sys.executable, "-m", "fervid.benchmarks.inference", "--quick", "--json",
                           "--compare", str(missing)], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()  # refused before Keras (and its log lines) is imported
    assert lines == [f"fervid.benchmarks.inference: error: --compare: model file {missing} not found"], done.stderr


def test_the_frozen_graph_is_timed_against_predict_on_batch_in_the_same_run(quick_run):
    """On TensorFlow the shipped call is the frozen graph; predict_on_batch is timed beside it."""
    result, _, _ = quick_run
    assert result["parameters"]["call_path"] == "frozen-graph"
    reference = result["reference_call"]
    assert reference["call_path"] == "predict_on_batch"
    rates = {entry["batch_size"]: entry["faces_per_s"] for entry in result["batches"]}
    assert [entry["batch_size"] for entry in reference["batches"]] == list(rates)
    for entry in reference["batches"]:
        assert entry["faces_per_s"] > 0 and entry["calls"] > 0
        assert entry["call_speedup"] == pytest.approx(rates[entry["batch_size"]] / entry["faces_per_s"], abs=1e-3)
