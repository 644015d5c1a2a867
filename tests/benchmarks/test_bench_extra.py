"""A benchmark that needs the ``bench`` extra (psutil, matplotlib) names it in one line when it is missing.

The subprocesses see a real fervid ``.dist-info`` first on their path whose ``bench`` extra needs a
distribution that is not installed: what a core install (``pip install fervid[cpu]``) looks like.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.dist_info import write_dist_info

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def without_bench(tmp_path) -> dict:
    write_dist_info(tmp_path / "site", "fervid", ["Provides-Extra: bench",
                                                  'Requires-Dist: fervid-absent-bench-dependency; extra == "bench"'])
    return {**os.environ, "PYTHONPATH": str(tmp_path / "site")}


@pytest.mark.parametrize(("benchmark", "args", "what"), [
    ("pipeline", ["--quick"], "fervid.benchmarks.pipeline"),
    ("profile_actors", ["--quick"], "fervid.benchmarks.profile_actors"),
    ("inference", ["--quick", "--plot", "x.png"], "--plot"),
    ("detector", ["--quick", "--plot", "x.png"], "--plot"),
])
def test_a_benchmark_without_the_bench_extra_says_so_in_one_line(without_bench, tmp_path, benchmark, args, what):
    done = subprocess.run([sys.executable, "-m", f"fervid.benchmarks.{benchmark}", "--json", *args], cwd=tmp_path,
                          env=without_bench, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"fervid.benchmarks.{benchmark}: error: {what} needs fervid's 'bench' extra, "
                                   f"which is not installed (missing fervid-absent-bench-dependency): "
                                   f"pip install 'fervid[bench]'")
