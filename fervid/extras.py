"""fervid's optional parts (pyproject's extras) and one clear line when a command needs a missing one.

The core install runs the service and the recognition commands (``up``, ``attach``, ``status``,
``predict``, ``evaluate``...). The windows (``gui``: PyQt5), training (``training``: Ray Train's
libraries, matplotlib), recorded video (``analysis``: matplotlib, tqdm) and the benchmarks (``bench``) need packages only some users want. A command
that needs one calls :func:`require` before importing it, so the user reads which extra to install
instead of an ImportError traceback from deep inside the command. What each extra holds is read from
fervid's installed metadata, so pyproject.toml stays the one list.
"""
from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement

from fervid.errors import FervidError

GUI = "gui"
TRAINING = "training"
BENCH = "bench"
ANALYSIS = "analysis"


def _extra_requirements(distribution: str, extra: str) -> list[Requirement]:
    """The requirements ``distribution`` adds for ``extra`` on this Python and platform."""
    found = []
    for line in metadata.requires(distribution) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        # An extra's line is one whose marker holds with this extra and fails without any.
        if marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
            found.append(requirement)
    return found


def _missing(requirement: Requirement) -> list[str]:
    """``requirement``'s distribution, or the distributions its own extras need, when not installed."""
    try:
        metadata.distribution(requirement.name)
    except metadata.PackageNotFoundError:
        return [requirement.name]
    return [name for extra in sorted(requirement.extras)
            for nested in _extra_requirements(requirement.name, extra) for name in _missing(nested)]


def missing(extra: str) -> list[str]:
    """Distributions of fervid's ``extra`` that are not installed (empty when it is complete)."""
    if extra not in (metadata.metadata("fervid").get_all("Provides-Extra") or []):
        raise ValueError(f"fervid has no extra {extra!r}")
    return sorted({name for requirement in _extra_requirements("fervid", extra) for name in _missing(requirement)})


def require(extra: str, what: str) -> None:
    """Raise a one-line :class:`FervidError` when ``what`` (e.g. ``fervid app``) lacks ``extra``."""
    absent = missing(extra)
    if absent:
        raise FervidError(f"{what} needs fervid's '{extra}' extra, which is not installed "
                          f"(missing {', '.join(absent)}): pip install 'fervid[{extra}]'")
