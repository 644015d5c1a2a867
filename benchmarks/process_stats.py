"""CPU time and memory of a process tree, sampled while a benchmark runs.

A Ray service is many processes (GCS, raylet, one worker per actor, the driver), so "how much
CPU and memory does it use" means the whole tree under the benchmark's own process. Resident
set sizes are summed; pages shared between processes (Ray's object store) are counted once per
process that touched them, so the sum is an upper bound.

psutil comes with the ``bench`` extra; it is imported where it is used, so that a benchmark started
without it can say so in one line (``common.require_bench``) instead of failing at import.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


def tree(root: int | None = None) -> list[psutil.Process]:
    """``root`` (default: this process) and all its descendants that still exist."""
    import psutil

    parent = psutil.Process(root or os.getpid())
    try:
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return [parent]


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def process_label(process: psutil.Process) -> str:
    """What a process is: a Ray actor's class (``ray::DetectorActor``), or the program's name."""
    import psutil

    try:
        argv = process.cmdline()
        name = process.name()
    except psutil.Error:
        return "?"
    first = argv[0] if argv else name
    if first.startswith("ray::"):
        return first.split(".", 1)[0].split(" ", 1)[0]  # ray::DetectorActor.detect -> ray::DetectorActor
    if "python" in name and process.pid == os.getpid():
        return "benchmark driver"
    return os.path.basename(first) if "python" not in os.path.basename(first) else _python_label(argv)


def _python_label(argv: list[str]) -> str:
    """A Python helper process, named by its module or script (e.g. ray's dashboard agent)."""
    args = argv[1:]
    for i, part in enumerate(args):
        if part == "-m" and i + 1 < len(args):
            return args[i + 1]
        if part == "-c":
            return "python -c"
        if part.endswith(".py"):
            return os.path.basename(part)
    return "python"


@dataclass
class TreeSample:
    t: float
    rss_by_pid: dict[int, int]

    @property
    def rss_bytes(self) -> int:
        return sum(self.rss_by_pid.values())


@dataclass
class ProcessSampler:
    """Samples RSS of the tree every ``interval_s``; CPU seconds between ``mark`` calls.

    CPU time is summed over processes alive at both ends of a window (a process that died in
    between is left out: the figure is a lower bound in that case).
    """

    interval_s: float = 0.5
    root: int | None = None
    samples: list[TreeSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _labels: dict[int, str] = field(default_factory=dict)

    def start(self) -> "ProcessSampler":
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.interval_s)

    def sample(self) -> TreeSample:
        import psutil

        rss = {}
        for process in tree(self.root):
            try:
                rss[process.pid] = process.memory_info().rss
            except psutil.Error:
                continue
        return TreeSample(time.monotonic(), rss)

    def cpu_mark(self) -> dict[int, float]:
        """CPU seconds used so far by each process of the tree, keyed by pid."""
        import psutil

        marks = {}
        for process in tree(self.root):
            try:
                marks[process.pid] = _cpu_seconds(process)
            except psutil.Error:
                continue
            if process.pid not in self._labels:
                self._labels[process.pid] = process_label(process)
        return marks

    @staticmethod
    def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds used between two marks (processes present in both)."""
        return sum(after[pid] - before[pid] for pid in after if pid in before)

    def cpu_by_label(self, before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
        """CPU seconds between two marks per kind of process (see ``process_label``; labels are
        read at the first mark, when a Ray worker already carries its actor's name), largest first."""
        used: dict[str, float] = {}
        for pid in after:
            if pid in before:
                label = self._labels.get(pid, "?")
                used[label] = used.get(label, 0.0) + after[pid] - before[pid]
        return dict(sorted(used.items(), key=lambda item: -item[1]))

    def memory_summary(self, since: float | None = None, until: float | None = None) -> dict:
        """Summed RSS (MiB) of the processes alive at the end of the window [since, until].

        Only those processes count, so that workers of an earlier run still exiting do not
        make memory look as if it fell (or peaked); growth compares the processes present at
        both ends of the window.
        """
        window = [s for s in self.samples if (since is None or s.t >= since) and (until is None or s.t <= until)]
        if not window:
            return {"peak_rss_mib": None, "first_rss_mib": None, "last_rss_mib": None, "growth_pct": None,
                    "processes": None}
        mib = 1024 * 1024
        alive = set(window[-1].rss_by_pid)
        both = alive & set(window[0].rss_by_pid)
        first = sum(window[0].rss_by_pid[pid] for pid in both)
        last = sum(window[-1].rss_by_pid[pid] for pid in both)
        peak = max(sum(rss for pid, rss in s.rss_by_pid.items() if pid in alive) for s in window)
        return {"peak_rss_mib": round(peak / mib, 1), "first_rss_mib": round(first / mib, 1),
                "last_rss_mib": round(last / mib, 1),
                "growth_pct": round(100.0 * (last - first) / first, 2) if first else None,
                "processes": len(alive)}
