"""Keep every listener of an embedded Ray (the one ``fervid up`` or ``fervid train --workers N``
starts for itself) on 127.0.0.1.

A root module, beside ``fervid.errors``: both ``services`` and ``training`` start Ray, and neither
may import the other; it imports no fervid package, and the packages that may not import Ray
(media, models, comms, analysis, gui) cannot reach it without breaking their contracts.

Why this exists: an embedded Ray is one machine's private runtime, yet by default on Linux each of
its processes listens on all interfaces: the GCS, the raylet's node and object managers, every
worker's and the driver's gRPC server, the dashboard agent (gRPC, HTTP, Ray's Prometheus exporter),
the runtime-env agent, and the autoscaler's and dashboard's Prometheus exporters. Ray's token
authentication covers most of them but not the Prometheus exporters (docs/reliability.md, "Ray's
own listeners").

How Ray decides: every one of those servers binds loopback exactly when the node's IP address is
loopback, and all interfaces otherwise. Ray replaces a loopback address (a node's, or one to join)
by the machine's outward one, unless its multi-node support is off: ``ray_constants.ENABLE_RAY_CLUSTER``,
read from ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when Ray is imported; off by default on Windows and
macOS, where Ray keeps a local Ray on loopback that way; on for Linux. Ray is imported before fervid
could set the variable, so ``keep_loopback`` sets the value Ray read it into, only around one
``ray.init``:

- starting a node: its IP is 127.0.0.1, and every process of that Ray receives it on its command line;
- joining: a 127.0.0.1 address (given, from ``auto`` or from ``RAY_ADDRESS``) is used as it is, which
  is how other fervid commands reach such a Ray. Any other address is not touched by the setting.

Nothing from another machine can join or reach an embedded Ray then, which is the point: a
cluster is started with ``ray start`` and joined with an address. Ray's own command line
(``ray status`` ...) reaches an embedded Ray only with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ray._private import ray_constants


@contextmanager
def keep_loopback() -> Iterator[None]:
    """While active, Ray in this process keeps loopback addresses: a node started takes 127.0.0.1
    as its IP address, and a loopback address to join is not replaced by the machine's outward one."""
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
