"""fervid.benchmarks.pipeline: a quick run of the real service and both baselines, structure checked.

The figures themselves are not asserted (this is a noisy 2-core box); what is checked is that
every section is measured, that the ratios are the quotients of the reported numbers, and that
the counts add up (drops per stream sum to the total, processed never exceeds captured).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fervid.benchmarks.pipeline import P99_BUDGET_MS, paced_passes, parse_overrides
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.pipeline", "--quick", "--json",
                           "--out", str(out / "result.json"), "--plot", str(out / "plot.png")],
                          cwd=REPO, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), out  # stdout is one JSON document and nothing else


def check_run(run: dict, streams: int) -> None:
    assert run["streams"] == streams and run["seconds"] > 0
    assert set(run["latency_ms"]) == {"p50", "p95", "p99"}
    assert run["processed"] > 0 and run["frames_per_s"] > 0
    # Captures and publications are shipped to the endpoint by different actors every ~0.5 s, so
    # the two counts of one window may be up to about a second of frames apart.
    assert run["processed"] <= run["captured"] + run["frames_per_s"] * 1.5 + run["streams"] * 2
    assert run["dropped_total"] == sum(run["dropped"].values())
    assert sum(sum(s["dropped"].values()) for s in run["per_stream"].values()) == run["dropped_total"]
    assert sum(s["processed"] for s in run["per_stream"].values()) == run["processed"]
    assert run["cpu_cores_used"] > 0
    assert run["memory"]["peak_rss_mib"] > 0 and run["memory"]["processes"] > 3  # Ray: gcs, raylet, workers
    assert run["restarts"] == 0
    scans = run["scans"]  # tracking is on by default: some frames are full scans, some region scans
    assert 0 < scans["full_scan_share"] <= 1.1 and scans["regions_per_frame"] >= 0
    assert scans["boxes_carried_per_frame"] == 0  # region_scan_every defaults to 1: nothing carried
    assert 0 < scans["pixels_per_frame"] <= 640 * 360 * 1.1


def test_quick_run_reports_every_section_with_computed_ratios(quick_run):
    result, out = quick_run
    assert json.loads((out / "result.json").read_text()) == result
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    naive, ceiling = result["baselines"]["naive"], result["baselines"]["ceiling"]
    assert naive["processes"] == 1 and ceiling["processes"] == result["machine"]["cpu_count"]
    assert naive["frames_per_s"] > 0 and ceiling["frames_per_s"] > 0
    pipeline = result["pipeline"]
    check_run(pipeline, result["parameters"]["streams"])
    ratios = result["ratios"]
    assert ratios["pipeline_over_naive"] == pytest.approx(pipeline["frames_per_s"] / naive["frames_per_s"], abs=1e-3)
    assert ratios["pipeline_over_ceiling"] == pytest.approx(pipeline["frames_per_s"] / ceiling["frames_per_s"],
                                                            abs=1e-3)
    assert ratios["goal_met"] == (ratios["pipeline_over_ceiling"] >= ratios["goal_over_ceiling"])


def test_quick_run_paced_search_and_scaling(quick_run):
    result, _ = quick_run
    paced = result["paced"]
    assert paced["runs"], "the paced search measured nothing"
    for run in paced["runs"]:
        check_run(run, run["streams"])
        assert run["paced"] and run["fps_per_stream"] == paced["fps_per_stream"]
        assert run["passes"] == paced_passes(run)
    assert paced["max_streams"] == max([r["streams"] for r in paced["runs"] if r["passes"]], default=0)
    scaling = result["scaling"]
    for mode in ("unpaced", "live_29_97fps"):
        assert [run["streams"] for run in scaling[mode]] == scaling["streams"]
        for run in scaling[mode]:
            check_run(run, run["streams"])


def test_paced_rule_needs_no_drops_and_p99_under_budget():
    ok = {"dropped_total": 0, "latency_ms": {"p99": P99_BUDGET_MS - 1}}
    assert paced_passes(ok)
    assert not paced_passes({**ok, "dropped_total": 1})
    assert not paced_passes({**ok, "latency_ms": {"p99": P99_BUDGET_MS}})
    assert not paced_passes({**ok, "latency_ms": {"p99": None}})


def test_overrides_parse_and_bad_ones_fail_in_one_line():
    assert parse_overrides(["inference.max_wait_ms=0", "detector.downscale=0.5"]) == {
        "inference": {"max_wait_ms": 0}, "detector": {"downscale": 0.5}}
    with pytest.raises(ValueError):
        parse_overrides(["downscale=0.5"])
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.pipeline", "--set", "detector.downscale=3"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].endswith("detector.downscale: Input should be less than or equal to 1")


def test_one_section_runs_alone_and_the_others_are_null():
    proc = subprocess.run([sys.executable, "-m", "fervid.benchmarks.pipeline", "--quick", "--json", "--sections", "paced",
                           "--set", "inference.max_wait_ms=5"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["baselines"] is None and result["pipeline"] is None and result["ratios"] is None
    assert result["scaling"] is None and result["paced"]["runs"]
    assert result["parameters"]["overrides"] == {"inference": {"max_wait_ms": 5}}
    bad = subprocess.run([sys.executable, "-m", "fervid.benchmarks.pipeline", "--sections", "headline,nope"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--sections" in bad.stderr.strip().splitlines()[-1]
