"""A stream whose frames arrive but are never processed is 'stalled', never 'up', and comes back
by itself: the real service (real Ray, real capture actors on the sample clip, a real /metrics
scrape), with the capture actor's completion path broken on purpose (``inject_fault``).

Two paced streams run; ``cam0`` is broken, ``cam1`` must not notice. The stall window follows the
production rule (2 x ``stuck_timeout_s``, restart one ``stuck_timeout_s`` later) with a 5 s stuck
timeout, as in tests/reliability. Each test prints what it measured (run with ``-s`` to see it):
seconds from the fault until ``stalled`` was shown, until the status showed the capture actor
being replaced, and until a new capture process was seen processing frames (status is polled every
0.2 s, the controller refreshes it every second).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
import ray

from fervid.services.config import CaptureConfig
from fervid.services.runtime import NAMESPACE
from fervid.services.service import format_status_line
from fervid.services.stream_health import STALLED, StallRule
from tests.conftest import SAMPLE_CLIP
from tests.services.service_helpers import (restarts_counted, running_service, sample_value, scrape,
                                            stream_status, wait_for)

CAPTURE = {"stuck_timeout_s": 5.0}
RULE = StallRule.for_capture(CaptureConfig(**CAPTURE))
FAULTY, STEADY = "cam0", "cam1"
SLACK_S = 4.0
"""Health rounds (1 s, plus their probes on a loaded 2-core machine) between the window's end and
the status showing it."""


@pytest.fixture(scope="module")
def service(ray_session):
    streams = [{"name": name, "source": str(SAMPLE_CLIP), "loop": True, "fps": 6.0} for name in (FAULTY, STEADY)]
    with running_service(ray_session, streams, capture=dict(CAPTURE)) as info:
        yield info


@dataclass(frozen=True)
class Sample:
    t: float
    """Seconds since the fault."""
    state: str
    processed: int
    pid: int | None


class Timeline:
    """Every status of one stream the test looked at, timed from the fault."""

    def __init__(self, service: dict, name: str, t_fault: float):
        self.service, self.name, self.t_fault = service, name, t_fault
        self.samples: list[Sample] = []

    def look(self) -> dict:
        status = stream_status(self.service, self.name)
        self.samples.append(Sample(time.monotonic() - self.t_fault, status["state"],
                                   status.get("frames_processed", 0), status.get("pid")))
        return status

    def first(self, condition) -> Sample | None:
        return next((s for s in self.samples if condition(s)), None)


def stalls_counted(port: int, stream: str) -> float:
    return sample_value(scrape(port), "fervid_stream_stalls_total", stream=stream)


def inject(stream: str, fault: str) -> float:
    """Break the stream's capture actor; the monotonic time it was asked (effective within 0.2 s)."""
    ray.get(ray.get_actor(f"capture:{stream}", namespace=NAMESPACE).inject_fault.remote(fault), timeout=30)
    return time.monotonic()


def report(fault: str, **figures) -> None:
    print(json.dumps({"fault": fault, "window_s": RULE.window_s, "grace_s": RULE.grace_s, **figures}))


def test_frozen_completion_thread_is_stalled_not_up_and_recovers_by_itself(service):
    port = service["metrics_port"]
    old_pid = wait_for(lambda: (s := stream_status(service, FAULTY)).get("frames_processed") and s["pid"], 60,
                       what=f"{FAULTY} to run")
    steady_pid = stream_status(service, STEADY)["pid"]
    restarts_before = restarts_counted(port, "capture")
    stalls_before = stalls_counted(port, FAULTY)

    t_fault = inject(FAULTY, "freeze_completer")
    timeline = Timeline(service, FAULTY, t_fault)
    stalled = wait_for(lambda: (s := timeline.look())["state"] == STALLED and s,
                       RULE.window_s + 30, interval=0.2, what=f"{FAULTY} to be reported stalled")
    detected_s = timeline.samples[-1].t
    # What `fervid status` prints for it, and what Prometheus sees, while it is stalled.
    line = format_status_line(stalled)
    assert line.startswith(f"{FAULTY}: stalled, ") and "nothing processed for" in line, line
    wait_for(lambda: sample_value(scrape(port), "fervid_stream_up", stream=FAULTY) == 0.0, 5, interval=0.2,
             what="fervid_stream_up to be 0 for the stalled stream")
    assert stream_status(service, FAULTY)["pid"] == old_pid, "restarted before it was shown stalled"

    wait_for(lambda: (s := timeline.look()).get("pid") not in (None, old_pid) and s["state"] == "up"
             and s.get("frames_processed", 0) >= 5, RULE.grace_s + 60, interval=0.2,
             what=f"{FAULTY} to process frames again in a new capture actor")
    restarted = timeline.first(lambda s: s.pid != old_pid)  # a new actor: starting, or running
    recovered = timeline.first(lambda s: s.pid not in (None, old_pid) and s.processed > 0)
    wait_for(lambda: restarts_counted(port, "capture") >= restarts_before + 1
             and stalls_counted(port, FAULTY) >= stalls_before + 1, 10, interval=0.2,
             what="the capture restart and the stall to be counted on /metrics")
    steady = stream_status(service, STEADY)
    report("freeze_completer", detected_s=round(detected_s, 2), replaced_s=round(restarted.t, 2),
           processing_again_s=round(recovered.t, 2), stalled_line=line)

    frozen = [s for s in timeline.samples if s.pid == old_pid and s.t > 1.0]
    assert len({s.processed for s in frozen}) == 1, "the injected fault did not stop processing"
    # Never 'up' once frames had waited a window (plus the health loop's rounds) unprocessed.
    assert not [s for s in frozen if s.state == "up" and s.t > RULE.window_s + SLACK_S], timeline.samples
    assert RULE.window_s - 1.0 <= detected_s, "stalled before a full window without processing"
    assert stalls_counted(port, FAULTY) == stalls_before + 1
    wait_for(lambda: sample_value(scrape(port), "fervid_stream_up", stream=FAULTY) == 1.0, 5, interval=0.2,
             what="fervid_stream_up to be 1 again for the recovered stream")
    # The other stream never noticed.
    assert steady["pid"] == steady_pid and steady["state"] == "up" and steady["stalls"] == 0, steady
    assert stalls_counted(port, STEADY) == 0


def test_crashed_completion_thread_is_never_up_and_recovers_by_itself(service):
    """A completion thread that raises: the stream comes back in a new capture process, whichever
    part notices first (the stall verdict, or the actor going down with its thread)."""
    port = service["metrics_port"]
    old_pid = wait_for(lambda: (s := stream_status(service, FAULTY)).get("frames_processed") and s["pid"], 60,
                       what=f"{FAULTY} to run")
    restarts_before = restarts_counted(port, "capture")

    t_fault = inject(FAULTY, "crash_completer")
    timeline = Timeline(service, FAULTY, t_fault)
    wait_for(lambda: (s := timeline.look()).get("pid") not in (None, old_pid) and s["state"] == "up"
             and s.get("frames_processed", 0) >= 5, RULE.window_s + RULE.grace_s + 60, interval=0.2,
             what=f"{FAULTY} to process frames again in a new capture actor")
    wait_for(lambda: restarts_counted(port, "capture") >= restarts_before + 1, 10, interval=0.2,
             what="the capture restart to be counted on /metrics")
    restarted = timeline.first(lambda s: s.pid != old_pid or s.state == "restarting")
    recovered = timeline.first(lambda s: s.pid not in (None, old_pid) and s.processed > 0)
    stalled = timeline.first(lambda s: s.state == STALLED)
    report("crash_completer", stalled_s=stalled and round(stalled.t, 2), replaced_s=round(restarted.t, 2),
           processing_again_s=round(recovered.t, 2))

    dead = [s for s in timeline.samples if s.pid == old_pid and s.t > 1.0]
    assert len({s.processed for s in dead}) <= 1, "the injected fault did not stop processing"
    assert not [s for s in dead if s.state == "up" and s.t > RULE.window_s + SLACK_S], timeline.samples
