"""Which pydantic error a one-line message names, shared by the service config and training settings.

Both report the first problem and count the rest; they word the problem differently (a config
key and its path, a command-line flag and its value), so only the choice and the count live here.
"""
from __future__ import annotations

from pydantic import ValidationError


def first_problem(error: ValidationError) -> tuple[dict, str]:
    """The error to name and the suffix counting the others (``" (and 2 more problems)"`` or "").

    A misspelt key also makes the real key "missing", so an unknown key, the cause, comes first.
    """
    errors = error.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    others = error.error_count() - 1
    return first, (f" (and {others} more problem{'s' if others > 1 else ''})" if others else "")
