"""The C allocator's setting for every process of a Ray that fervid starts itself.

Why this exists: glibc's malloc gives threads that allocate at the same time separate arenas (up to
8 per core), and it keeps memory freed into an arena for reuse instead of returning it. A capture actor
runs Ray's gRPC threads, its reader thread and OpenCV's decoder threads, so its allocations spread over
several arenas. Without a cap, the 30-minute soak (``tests/reliability/test_soak.py``) measured
+11 MiB (+5.5%) per capture actor over the first ~14 minutes, after which it flattened. With two
arenas the soak passed: the capture actors grew 0.3-0.7%. The service's throughput on 4 streams was
the same (1.002 times the default's, ``docs/benchmarks/malloc_arena_ab.json``).

glibc reads ``MALLOC_ARENA_MAX`` only when a process starts, so it cannot be set from inside an
actor. It has to be in the environment of the raylet, whose workers inherit it. fervid sets it before
it starts an embedded Ray. On a cluster the nodes' environment carries it: the container image sets
it (the cluster launcher and the KubeRay manifests run that image), and so do the ``ray start`` lines
in ``docs/deploy.md``. A value that the user already exported wins. Other C libraries (musl) ignore
the variable.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

ARENA_VARIABLE = "MALLOC_ARENA_MAX"
DEFAULT_ARENAS = "2"


def configure_allocator(environ: MutableMapping[str, str] | None = None) -> str:
    """Put ``MALLOC_ARENA_MAX=2`` in ``environ`` (the process environment by default) unless it
    is set already, before a Ray is started from this process; return the value in effect."""
    target = os.environ if environ is None else environ
    return target.setdefault(ARENA_VARIABLE, DEFAULT_ARENAS)
