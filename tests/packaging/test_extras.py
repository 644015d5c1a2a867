"""fervid.extras reads the extras from real installed metadata and names the one a command lacks.

The missing cases use real ``.dist-info`` folders put first on ``sys.path``: importlib.metadata then
finds them before the installed fervid, as it would find a real install of another version.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fervid import extras
from fervid.errors import FervidError
from tests.packaging.dist_info import write_dist_info

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def probe_fervid(tmp_path, monkeypatch) -> Path:
    """A fervid whose 'gui' extra lacks one distribution and whose 'training' lacks one through a nested extra."""
    write_dist_info(tmp_path, "fervid", [
        "Provides-Extra: gui", "Provides-Extra: training", "Provides-Extra: bench",
        "Requires-Dist: numpy",
        'Requires-Dist: fervid-core-dependency-of-no-extra; python_version >= "3.0"',
        'Requires-Dist: numpy; extra == "gui"',
        'Requires-Dist: fervid-absent-gui-dependency>=1; extra == "gui"',
        'Requires-Dist: fervid-probe-lib[more]; extra == "training"',
        'Requires-Dist: fervid-absent-on-this-python; python_version < "3.0" and extra == "bench"',
    ])
    write_dist_info(tmp_path, "fervid-probe-lib", [
        "Provides-Extra: more",
        'Requires-Dist: fervid-absent-nested-dependency; extra == "more"',
        "Requires-Dist: numpy",
    ])
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_missing_distribution_of_an_extra_is_named(probe_fervid):
    assert extras.missing("gui") == ["fervid-absent-gui-dependency"]


def test_the_extras_of_a_requirement_are_followed(probe_fervid):
    assert extras.missing("training") == ["fervid-absent-nested-dependency"]


def test_requirements_for_another_python_do_not_count(probe_fervid):
    assert extras.missing("bench") == []
    extras.require("bench", "fervid.benchmarks.profile_actors")


def test_require_refuses_in_one_line_naming_the_extra(probe_fervid):
    with pytest.raises(FervidError) as caught:
        extras.require("gui", "fervid app")
    message = str(caught.value)
    assert message == ("fervid app needs fervid's 'gui' extra, which is not installed "
                       "(missing fervid-absent-gui-dependency): pip install 'fervid[gui]'")
    assert "\n" not in message


def test_an_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match="no extra 'guis'"):
        extras.missing("guis")


def test_the_named_extras_are_pyprojects_and_complete_in_the_test_environment():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in (extras.GUI, extras.TRAINING, extras.ANALYSIS, extras.BENCH):
        assert extra in declared
        assert extras.missing(extra) == []  # `make test` installs every extra
        extras.require(extra, "this test")
