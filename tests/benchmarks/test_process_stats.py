"""The process-tree sampler sees child processes' CPU time and memory."""
from __future__ import annotations

import subprocess
import sys
import time

from fervid.benchmarks.process_stats import ProcessSampler, tree


BUSY_CHILD = ("import sys, time\n{setup}"
              "while time.process_time() < {cpu}: pass\n"  # CPU seconds, however loaded the machine is
              "print('done', flush=True)\n"
              "sys.stdin.read()\n")  # stays alive (in the tree) until the test closes its stdin


def busy_child(cpu_seconds: float, setup: str = "") -> subprocess.Popen:
    """A Python child that burns ``cpu_seconds`` of CPU, says ``done``, and waits for its stdin to close."""
    return subprocess.Popen([sys.executable, "-c", BUSY_CHILD.format(setup=setup, cpu=cpu_seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_cpu_and_memory_of_a_busy_child_are_counted():
    child = busy_child(0.6, setup="b = bytearray(100 * 2**20)\nb[::4096] = b'x' * len(b[::4096])\n")
    try:
        sampler = ProcessSampler(interval_s=0.1)
        before = sampler.cpu_mark()
        assert child.pid in {p.pid for p in tree()}
        sampler.start()
        assert child.stdout.readline() == "done\n"
        time.sleep(0.3)  # a few RSS samples while the child holds its memory
        after = sampler.cpu_mark()
        sampler.stop()
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    # The child used 0.6 s of CPU in all; its start-up before the first mark takes far less than 0.2 s.
    assert ProcessSampler.cpu_between(before, after) > 0.4
    memory = sampler.memory_summary()
    assert memory["peak_rss_mib"] > 100
    assert memory["processes"] >= 2
    assert ProcessSampler().memory_summary(since=time.monotonic() + 10)["peak_rss_mib"] is None


def test_cpu_is_grouped_by_what_each_process_is():
    child = busy_child(0.5)
    try:
        sampler = ProcessSampler()
        before = sampler.cpu_mark()
        assert child.stdout.readline() == "done\n"
        after = sampler.cpu_mark()
    finally:
        child.stdin.close()
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
