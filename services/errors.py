"""The service's own error, shared by the controller and the modules it wires together.

A module of its own so the pipeline, the stream registry and the controller can all raise it
without importing one another; the CLI shows it as one line (``unwrap`` re-raises it by type).
"""
from __future__ import annotations

from fervid.errors import FervidError


class ServiceError(FervidError):
    """The service cannot do what was asked (unknown stream, duplicate name, busy port...)."""
