"""Pool health: probe the detectors and inference actors, replace the ones that died for good.

Ray restarts a crashed actor in place up to ``max_restarts`` times; an actor out of restarts (or
killed for good) stays dead, and every frame sent to it fails. The controller's health loop calls
``check_pool`` every round: a probe that times out or finds the actor unavailable means busy or
being restarted by Ray (left alone), ``ActorDiedError`` means gone (replaced under the same name).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import ray

from fervid.services.pipeline import Pipeline

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PoolCheck:
    replaced: tuple[str, ...]
    """Kinds of the actors replaced this round (the captures need the new handles)."""
    answered: bool
    """Every detector and inference actor answered its probe: nothing in the shared pipeline is
    restarting or frozen, so a stream that processes nothing has a problem of its own."""


def check_pool(pipeline: Pipeline, timeout_s: float = PROBE_TIMEOUT_S) -> PoolCheck:
    """Probe every detector (``pid``) and inference actor (``ready``) at once, within ``timeout_s``."""
    probes = [("detector", index, actor.pid.remote()) for index, actor in enumerate(pipeline.detectors)]
    probes += [("inference", index, actor.ready.remote()) for index, actor in enumerate(pipeline.inference)]
    deadline = time.monotonic() + timeout_s
    replaced: list[str] = []
    answered = True
    for kind, index, ref in probes:
        try:
            ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
        except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
            answered = False  # busy, or Ray is restarting it in place
        except ray.exceptions.ActorDiedError:
            pipeline.replace(kind, index)
            replaced.append(kind)
            answered = False
    return PoolCheck(tuple(replaced), answered)
