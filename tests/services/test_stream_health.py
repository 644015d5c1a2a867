"""Stream health verdicts (services/stream_health.py): when a stream whose source is up is
``stalled``, when its capture actor is restarted, and what is never called a stall.

The verdicts are judged from the figures a capture actor reports, polled once a second; here the
polls are plain dicts and the clock is a number, so each rule is checked exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fervid.services.config import CaptureConfig
from fervid.services.service import format_status_line
from fervid.services.stream_health import MAX_GRACE_S, STALLED, StallRule, StreamHealth

RULE = StallRule(window_s=10.0, grace_s=5.0)


@dataclass
class Capture:
    """What one capture actor reports: its counters move as the test says."""

    state: str = "up"
    captured: int = 0
    processed: int = 0
    in_flight: int = 0
    pid: int = 100
    extra: dict = field(default_factory=dict)

    def status(self) -> dict:
        return {"name": "cam", "state": self.state, "fps": 10.0, "frames_captured": self.captured,
                "frames_processed": self.processed, "in_flight": self.in_flight, "pid": self.pid, **self.extra}


def run(health: StreamHealth, capture: Capture, seconds: int, start: float, step=None, pool_answered=True):
    """Poll once a second for ``seconds``; ``step(capture)`` changes the counters before each poll."""
    verdicts = []
    for t in range(seconds):
        if step:
            step(capture)
        verdicts.append((start + t, health.observe("cam", capture.status(), start + t, pool_answered)))
    return verdicts


def arriving(capture: Capture) -> None:
    """A live source at 10 frames/s whose frames are never completed (in flight stays full)."""
    capture.captured += 10
    capture.in_flight = 4


def flowing(capture: Capture) -> None:
    capture.captured += 10
    capture.processed += 10
    capture.in_flight = 2


def first_stalled(verdicts) -> float | None:
    return next((t for t, v in verdicts if v.state == STALLED), None)


# -- the window --------------------------------------------------------------------------------

def test_frames_arriving_and_none_processed_is_stalled_after_the_window_not_before():
    health = StreamHealth(RULE)
    capture = Capture(captured=50, processed=40, in_flight=0)
    run(health, capture, 5, start=0.0, step=flowing)  # healthy first
    verdicts = run(health, capture, 20, start=5.0, step=arriving)
    # Work since the last poll that saw a frame processed (t=4: frames were in flight then, and
    # none of them ever completed); stalled once 10 s have passed.
    assert first_stalled(verdicts) == 14.0
    assert all(v.state == "up" for t, v in verdicts if t < 14.0)
    assert all(v.state == STALLED for t, v in verdicts if t >= 14.0)
    stalled = dict(verdicts)
    assert stalled[14.0].newly_stalled and not stalled[15.0].newly_stalled
    assert stalled[14.0].stalls == stalled[24.0].stalls == 1
    assert stalled[18.0].stalled_s == pytest.approx(14.0)
    shown = stalled[18.0].annotate(capture.status())
    assert shown["state"] == STALLED and shown["stalled_s"] == 14.0 and shown["stalls"] == 1
    assert shown["frames_captured"] == capture.captured  # the capture's own figures stay


def test_a_stream_that_processes_is_up_however_long_it_runs():
    health = StreamHealth(RULE)
    verdicts = run(health, Capture(), 300, start=0.0, step=flowing)
    assert {v.state for _, v in verdicts} == {"up"} and not any(v.restart for _, v in verdicts)


def test_a_slow_source_whose_frames_are_processed_is_not_stalled():
    """One frame every 8 s, processed 2 s later: long gaps without processing, but no stall."""
    health = StreamHealth(RULE)
    capture = Capture()
    verdicts = []
    for t in range(120):
        if t % 8 == 0:
            capture.captured += 1
            capture.in_flight = 1
        if t % 8 == 2:
            capture.processed += 1
            capture.in_flight = 0
        verdicts.append(health.observe("cam", capture.status(), float(t)))
    assert {v.state for v in verdicts} == {"up"}


def test_frames_held_in_flight_without_new_ones_arriving_is_stalled():
    """An unpaced file reads only when there is room: a hung completion thread stops its reading
    too, so nothing new arrives, but the frames it holds never complete."""
    health = StreamHealth(RULE)
    capture = Capture(captured=4, processed=0, in_flight=4)
    verdicts = run(health, capture, 15, start=0.0)
    assert first_stalled(verdicts) == 10.0


# -- never a stall -----------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["down", "finished", "stopped", "starting"])
def test_a_source_that_is_not_up_is_never_stalled(state):
    """A dead camera, a file at its end without loop, a stopped or starting stream: frames that
    were in flight when it went may never complete, but that is not a stall."""
    health = StreamHealth(RULE)
    capture = Capture(state=state, captured=30, processed=20, in_flight=3)
    verdicts = run(health, capture, 60, start=0.0)
    assert {v.state for _, v in verdicts} == {state}
    assert not any(v.restart or v.newly_stalled for _, v in verdicts)


def test_a_stream_that_never_captured_a_frame_is_not_stalled():
    health = StreamHealth(RULE)
    verdicts = run(health, Capture(state="up", captured=0, processed=0, in_flight=0), 60, start=0.0)
    assert {v.state for _, v in verdicts} == {"up"}


def test_waiting_through_an_outage_does_not_count_once_the_source_is_back():
    health = StreamHealth(RULE)
    capture = Capture(captured=10, processed=10)
    run(health, capture, 8, start=0.0, step=arriving)  # 8 s of work, nothing processed...
    capture.state = "down"
    run(health, capture, 30, start=8.0)  # ...then the camera is gone for 30 s
    capture.state = "up"
    verdicts = run(health, capture, 12, start=38.0, step=arriving)
    # Judged from the source's return: stalled only a full window after it.
    assert first_stalled(verdicts) == 48.0


def test_a_stall_ends_when_a_frame_is_processed_and_the_next_one_counts_again():
    health = StreamHealth(RULE)
    capture = Capture(captured=10, processed=10)
    run(health, capture, 12, start=0.0, step=arriving)
    (_, back), = run(health, capture, 1, start=12.0, step=flowing)
    assert back.state == "up" and back.stalled_s is None and back.stalls == 1
    verdicts = run(health, capture, 12, start=13.0, step=arriving)
    assert first_stalled(verdicts) == 22.0 and dict(verdicts)[22.0].stalls == 2


# -- restarts ----------------------------------------------------------------------------------

def test_the_capture_is_restarted_a_grace_period_after_the_stall():
    health = StreamHealth(RULE)
    verdicts = run(health, Capture(captured=10, processed=10), 30, start=0.0, step=arriving)
    # Work from t=0, stalled at t=10, restart due at 10 + 5.
    assert [t for t, v in verdicts if v.restart][0] == 15.0


def test_no_restart_while_the_pool_does_not_answer_and_a_full_grace_after_it_does():
    """The inference actor reloading its model stops every stream; new captures would not help."""
    health = StreamHealth(RULE)
    capture = Capture(captured=10, processed=10)
    silent = run(health, capture, 30, start=0.0, step=arriving, pool_answered=False)
    assert first_stalled(silent) == 10.0 and not any(v.restart for _, v in silent)
    answered = run(health, capture, 10, start=30.0, step=arriving)
    assert [t for t, v in answered if v.restart][0] == 35.0


def test_a_restart_that_does_not_help_doubles_the_next_wait_and_progress_resets_it():
    health = StreamHealth(RULE)
    capture = Capture(captured=10, processed=10)
    run(health, capture, 16, start=0.0, step=arriving)  # restart due at t=15
    health.restarted("cam")
    fresh = Capture(captured=0, processed=0, pid=200)  # the new process counts from zero
    verdicts = run(health, fresh, 40, start=16.0, step=arriving)
    # Work from its first poll (16), stalled at 26, next restart after 2 x 5 s: 36.
    assert first_stalled(verdicts) == 26.0
    assert [t for t, v in verdicts if v.restart][0] == 36.0
    assert dict(verdicts)[26.0].stalls == 2
    # It comes back: the back-off is forgotten, a later stall waits the plain grace again.
    health.restarted("cam")
    third = Capture(captured=0, processed=0, pid=300)
    run(health, third, 5, start=56.0, step=flowing)
    later = run(health, third, 20, start=61.0, step=arriving)
    assert [t for t, v in later if v.restart][0] == 60.0 + 10 + 5  # work from its last processed poll


def test_the_wait_between_restarts_is_capped():
    health = StreamHealth(StallRule(window_s=10.0, grace_s=200.0))
    for pid in range(1, 4):  # three restarts that did not help: 200 x 8 would be 1600 s
        health.observe("cam", Capture(pid=pid, captured=1, in_flight=1).status(), 0.0)
        health.restarted("cam")
    capture = Capture(pid=99, captured=1, in_flight=1)
    health.observe("cam", capture.status(), 1000.0)  # work from here...
    assert health.observe("cam", capture.status(), 1010.0).newly_stalled  # ...stalled from here
    assert not health.observe("cam", capture.status(), 1010.0 + MAX_GRACE_S - 1).restart
    assert health.observe("cam", capture.status(), 1010.0 + MAX_GRACE_S).restart


def test_a_process_restarted_by_ray_is_judged_from_its_own_first_poll():
    """Ray restarts a crashed capture in place: new pid, counters from zero, old figures forgotten."""
    health = StreamHealth(RULE)
    run(health, Capture(captured=10, processed=10), 9, start=0.0, step=arriving)
    verdicts = run(health, Capture(pid=101), 15, start=9.0, step=arriving)
    assert first_stalled(verdicts) == 19.0


def test_a_detached_stream_is_forgotten():
    health = StreamHealth(RULE)
    run(health, Capture(captured=10, processed=10), 12, start=0.0, step=arriving)
    health.forget("cam")
    (_, verdict), = run(health, Capture(captured=10, processed=10), 1, start=12.0, step=arriving)
    assert verdict.state == "up" and verdict.stalls == 0


# -- the rule from the config ------------------------------------------------------------------

def test_the_window_defaults_to_two_stuck_timeouts_and_the_grace_to_one():
    assert StallRule.for_capture(CaptureConfig()) == StallRule(window_s=30.0, grace_s=15.0)
    assert StallRule.for_capture(CaptureConfig(stuck_timeout_s=4)) == StallRule(window_s=8.0, grace_s=4.0)
    assert StallRule.for_capture(CaptureConfig(stall_timeout_s=7.5)) == StallRule(window_s=7.5, grace_s=15.0)


# -- what `fervid status` prints ---------------------------------------------------------------

def test_a_stalled_stream_never_reads_up_in_the_status_line():
    health = StreamHealth(RULE)
    capture = Capture(captured=10, processed=10, extra={"frames_dropped": 3, "last_error": "old outage"})
    verdicts = run(health, capture, 13, start=0.0, step=arriving)
    line = format_status_line(verdicts[-1][1].annotate(capture.status()))
    assert line.startswith("cam: stalled, 10.0 fps captured, 10 processed, 3 dropped, 1 stalls")
    assert line.endswith("(nothing processed for 12 s while frames arrive)")
    assert " up" not in line and "old outage" not in line
    healthy = format_status_line({"name": "cam", "state": "up", "fps": 10.0, "frames_processed": 5, "stalls": 0})
    assert healthy == "cam: up, 10.0 fps, 5 processed"


def test_the_status_line_of_a_source_being_retried_counts_its_open_attempts():
    """A source that never opened has 0 reconnects for ever; its open attempts show it is retried."""
    down = {"name": "cam", "state": "down", "frames_processed": 0, "reconnects": 0, "open_attempts": 7,
            "last_error": "cannot open rtsp://cam.invalid/1"}
    assert format_status_line(down) == ("cam: down, 0 processed, 0 reconnects, 7 open attempts, "
                                        "(cannot open rtsp://cam.invalid/1)")
    up = {"name": "cam", "state": "up", "frames_processed": 3, "open_attempts": 1}
    assert "open attempts" not in format_status_line(up)


def test_status_line_shows_tracks_and_the_share_of_pixels_scanned():
    line = format_status_line({"name": "cam", "state": "up", "fps": 30.0, "frames_processed": 90,
                               "tracking": {"tracks_alive": 2, "tracks_started": 3, "full_scans": 9,
                                            "region_scans": 120, "scanned_share": 0.184}})
    assert "2 tracks, 18% of pixels scanned" in line
    assert "tracks" not in format_status_line({"name": "cam", "state": "up", "tracking": None})
