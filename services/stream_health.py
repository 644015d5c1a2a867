"""Per-stream health verdicts: is a stream whose source is up actually processing its frames?

A capture actor reports its source's state (``up`` while frames arrive) and its counters. A
stream can be up by that measure and process nothing: its completion thread hangs or died, or
every frame it sends is lost on the way. ``fervid status`` then showed ``up, 30.0 fps`` while the
processed count stood still. The controller polls each capture every second and hands the
figures to ``StreamHealth``, which decides; nothing here touches Ray, so the rule is tested with
plain numbers.

The rule. A stream *has work* from the first poll at which frames arrived after its last
processed frame, or frames sit in its part of the pipeline. It is ``stalled`` when its source is
up and it has had work for ``window_s`` without one frame processed. ``window_s`` is
``capture.stall_timeout_s``, by default twice ``capture.stuck_timeout_s``: the capture actor
processes or gives up every frame within ``stuck_timeout_s``, so a stream with nothing processed
for two of those periods is not slow but stuck. Never stalled: a source that is not up (down,
finished without ``loop``, stopped, starting; frames that waited through an outage do not count
afterwards) and a stream that never had a frame.

Recovery. A stalled stream's capture actor is restarted once it has been stalled for ``grace_s``
(``stuck_timeout_s``) while every detector and inference actor answered the controller: when the
inference actor is reloading its model every stream processes nothing, and new capture actors
would not help. A restart after which the stream still processed nothing doubles the next
wait, up to ``MAX_GRACE_S``, so a fault elsewhere does not restart captures in a loop.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from fervid.services.config import CaptureConfig

UP = "up"
STALLED = "stalled"
STALL_WINDOW_STUCK_TIMEOUTS = 2
"""Default stall window in units of ``capture.stuck_timeout_s``."""
MAX_GRACE_S = 600.0
"""Longest wait between two restarts of a capture actor that stays stalled."""


@dataclass(frozen=True)
class StallRule:
    window_s: float
    """Seconds with work and nothing processed before a stream whose source is up is stalled."""
    grace_s: float
    """Seconds a stream stays stalled (the pool answering) before its capture actor is restarted."""

    @classmethod
    def for_capture(cls, capture: CaptureConfig) -> StallRule:
        """The rule for a service's capture settings (see the module docstring)."""
        window = capture.stall_timeout_s
        if window is None:
            window = STALL_WINDOW_STUCK_TIMEOUTS * capture.stuck_timeout_s
        return cls(window_s=window, grace_s=capture.stuck_timeout_s)


@dataclass(frozen=True)
class Verdict:
    state: str
    """The capture's state, or ``stalled``."""
    stalled_s: float | None
    """While stalled: seconds the stream has had work and processed nothing."""
    stalls: int
    """Times this stream was found stalled since it was attached."""
    newly_stalled: bool
    """This observation found the stream stalled (count it once)."""
    restart: bool
    """Restart the stream's capture actor now."""

    def annotate(self, status: dict) -> dict:
        """The capture's status as ``fervid status`` shows it: the verdict's state, the stall figures."""
        shown = {**status, "state": self.state, "stalls": self.stalls}
        if self.stalled_s is not None:
            shown["stalled_s"] = round(self.stalled_s, 1)
        return shown


@dataclass
class _Track:
    pid: int | None
    captured: int
    processed: int
    captured_base: int
    """Frames captured when the stream last processed one (or the counts were first seen)."""
    work_since: float | None = None
    stalled_since: float | None = None
    restart_clock: float | None = None
    """Since when the stream has been stalled with the pool answering (the grace runs from here)."""
    failed_restarts: int = 0
    """Capture restarts since the stream last processed a frame."""


class StreamHealth:
    """Verdicts for every attached stream, from the statuses its capture actors report."""

    def __init__(self, rule: StallRule):
        self.rule = rule
        self._tracks: dict[str, _Track] = {}
        self._stalls: Counter[str] = Counter()

    def observe(self, name: str, status: dict, now: float, pool_answered: bool = True) -> Verdict:
        """Judge one poll of ``name``'s capture ``status`` taken at ``now`` (monotonic seconds);
        ``pool_answered``: every detector and inference actor answered this round."""
        state = status.get("state")
        captured = int(status.get("frames_captured") or 0)
        processed = int(status.get("frames_processed") or 0)
        track = self._tracks.get(name)
        if (track is None or status.get("pid") != track.pid
                or captured < track.captured or processed < track.processed):
            # First look, or a new capture process whose counts start again.
            track = self._tracks[name] = _Track(status.get("pid"), captured, processed, captured,
                                                failed_restarts=track.failed_restarts if track else 0)
        if processed > track.processed:
            track.captured_base, track.work_since, track.failed_restarts = captured, None, 0
        elif state != UP:
            track.captured_base, track.work_since = captured, None
        track.captured, track.processed = captured, processed
        if state == UP and track.work_since is None and (captured > track.captured_base
                                                          or int(status.get("in_flight") or 0) > 0):
            track.work_since = now

        stalled = state == UP and track.work_since is not None and now - track.work_since >= self.rule.window_s
        newly = stalled and track.stalled_since is None
        if newly:
            track.stalled_since = now
            self._stalls[name] += 1
        if not stalled:
            track.stalled_since = None
        if not (stalled and pool_answered):
            track.restart_clock = None
        elif track.restart_clock is None:
            track.restart_clock = now
        wait = min(MAX_GRACE_S, self.rule.grace_s * 2 ** track.failed_restarts)
        restart = track.restart_clock is not None and now - track.restart_clock >= wait
        return Verdict(state=STALLED if stalled else state, stalled_s=now - track.work_since if stalled else None,
                       stalls=self._stalls[name], newly_stalled=newly, restart=restart)

    def restarted(self, name: str) -> None:
        """The controller replaced ``name``'s capture actor: judge the new one from its first poll,
        and make the next restart wait longer unless this one brings the stream back."""
        track = self._tracks.get(name)
        if track is not None:
            self._tracks[name] = _Track(None, 0, 0, 0, failed_restarts=track.failed_restarts + 1)

    def forget(self, name: str) -> None:
        """``name`` was detached."""
        self._tracks.pop(name, None)
        self._stalls.pop(name, None)
