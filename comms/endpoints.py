"""Where the publisher listens and monitors connect: one default, one rule for what is valid.

The service's config, ``fervid monitor`` and the monitor window all take an endpoint; checking it
here, before a socket exists, turns ``tcp://127.0.0.1:99999`` into a one-line error instead of a
monitor that waits for a minute on a port that cannot exist.
"""
from __future__ import annotations

import re

from fervid.errors import FervidError

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
"""Loopback only: a publisher reachable from other machines is an explicit choice in the config."""

_TCP = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})")


class EndpointError(FervidError):
    """An endpoint that ZMQ cannot use: not ``tcp://HOST:PORT``, or a port outside 1..65535."""


def check_tcp_endpoint(endpoint: str) -> str:
    """``endpoint`` itself when it is ``tcp://HOST:PORT`` with a port in 1..65535; else ``EndpointError``."""
    match = _TCP.fullmatch(endpoint) if isinstance(endpoint, str) else None
    if match is None:
        raise EndpointError(f"endpoint must look like tcp://HOST:PORT, got {endpoint!r}")
    if not 0 < int(match["port"]) < 65536:
        raise EndpointError(f"endpoint port must be in 1..65535, got {match['port']} in {endpoint!r}")
    return endpoint
