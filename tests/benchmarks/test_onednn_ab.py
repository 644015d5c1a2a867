"""``benchmarks.onednn_ab``: a real quick A/B (two inference runs), its run order and its verdict rule."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fervid.benchmarks.onednn_ab import LIVE_BATCHES, order, verdict

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_ab_runs_each_setting_in_its_own_process(tmp_path):
    out = tmp_path / "ab.json"
    done = subprocess.run([sys.executable, "-m", "fervid.benchmarks.onednn_ab", "--quick", "--json", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert [run["onednn"] for run in result["runs"]] == result["parameters"]["order"] == ["off", "on"]
    # TensorFlow announces the kernels only in the process that has them on: the variable took effect.
    assert [run["banner_seen"] for run in result["runs"]] == [False, True]
    for entry in result["batches"]:
        assert entry["on_over_off"] == pytest.approx(entry["faces_per_s_on"] / entry["faces_per_s_off"], abs=1e-3)
    assert result["serving_verdict"] == verdict(result["batches"])
    assert result["machine"]["keras_backend"] == "tensorflow"
    assert set(result["load_average_1min"]) == {"before", "after"}


def test_pairs_alternate_their_order():
    assert order(1) == ["off", "on"]
    assert order(3) == ["off", "on", "on", "off", "off", "on"]


@pytest.mark.parametrize(("ratios", "expected"), [
    ({1: 1.06, 4: 1.05, 64: 0.5}, "on"),  # only the live batch sizes decide
    ({1: 1.20, 4: 1.04, 64: 2.0}, "off"),  # both must gain 5%
    ({1: 0.90, 4: 1.30, 64: 2.0}, "off"),
    ({1: None, 4: 1.30, 64: 2.0}, "off"),  # nothing measured is no gain
])
def test_serving_keeps_onednn_only_when_it_is_faster_at_live_batch_sizes(ratios, expected):
    assert set(LIVE_BATCHES) <= set(ratios)
    assert verdict([{"batch_size": size, "on_over_off": ratio} for size, ratio in ratios.items()]) == expected
