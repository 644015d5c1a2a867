"""The process-tree sampler sees child processes' CPU time and memory."""
from __future__ import annotations

import subprocess
import sys
import time

from fervid.benchmarks.process_stats import ProcessSampler, tree


def test_cpu_and_memory_of_a_busy_child_are_counted():
    # The child holds ~100 MB and spins for about a second.
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; b = bytearray(100 * 2**20); t = time.time()\n"
                              "while time.time() - t < 1.5: pass"])
    try:
        time.sleep(0.3)
        sampler = ProcessSampler(interval_s=0.1)
        assert child.pid in {p.pid for p in tree()}
        before = sampler.cpu_mark()
        sampler.start()
        time.sleep(0.8)
        after = sampler.cpu_mark()
        sampler.stop()
    finally:
        child.wait(timeout=10)
    assert ProcessSampler.cpu_between(before, after) > 0.4  # the child was busy for most of 0.8 s
    memory = sampler.memory_summary()
    assert memory["peak_rss_mib"] > 100
    assert memory["processes"] >= 2
    assert ProcessSampler().memory_summary(since=time.monotonic() + 10)["peak_rss_mib"] is None


def test_cpu_is_grouped_by_what_each_process_is():
    child = subprocess.Popen([sys.executable, "-c", "import time; t = time.time()\nwhile time.time() - t < 1.2: pass",
                              ])
    try:
        time.sleep(0.2)
        sampler = ProcessSampler()
        before = sampler.cpu_mark()
        time.sleep(0.6)
        after = sampler.cpu_mark()
    finally:
        child.wait(timeout=10)
    by_label = sampler.cpu_by_label(before, after)
    assert by_label["python -c"] > 0.3
    assert "benchmark driver" in by_label


def test_memory_counts_only_processes_alive_at_the_end_of_the_window():
    from fervid.benchmarks.process_stats import TreeSample

    mib = 1024 * 1024
    sampler = ProcessSampler()
    # pid 1 is this run's (grows 100 -> 110 MiB); pid 2 is a worker of an earlier run, exiting.
    sampler.samples = [TreeSample(0.0, {1: 100 * mib, 2: 500 * mib}), TreeSample(1.0, {1: 120 * mib, 2: 500 * mib}),
                       TreeSample(2.0, {1: 110 * mib, 3: 10 * mib})]
    memory = sampler.memory_summary()
    assert memory == {"peak_rss_mib": 120.0, "first_rss_mib": 100.0, "last_rss_mib": 110.0, "growth_pct": 10.0,
                      "processes": 2}
    assert sampler.memory_summary(since=0.5, until=1.5)["peak_rss_mib"] == 620.0
