"""The wheel: its file list, and what an installed (not editable) copy does where a checkout's files are absent.

Cheap checks only: one wheel build per module and an install without dependencies into a folder
(``pip install --no-deps --target``) that runs on this environment's libraries. The full install in a
fresh virtual environment, ``fervid up`` included, is tests/packaging/check_wheel.py, run by .ci/run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.packaging.check_wheel import DIST_INFO, PACKAGE_DATA, build_wheel, source_modules, wheel_problems


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a plain folder, as site-packages would hold it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    return target


def run_installed(installed: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` with the installed copy first on the path, from a folder outside the repository."""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_holds_fervid_its_modules_and_its_data_only(wheel):
    assert wheel_problems(wheel) == []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {name.split("/", 1)[0] for name in names} == {"fervid", DIST_INFO}
    assert set(PACKAGE_DATA) <= names
    assert {name for name in names if name.endswith(".py")} == source_modules()
    assert not [name for name in names if "tests/" in name or "deploy/" in name or name.endswith(".pyc")]


def test_the_file_list_check_names_what_does_not_belong(wheel, tmp_path):
    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(broken, "w") as copy:
        for item in source.infolist():
            if item.filename not in ("fervid/models/weights/mini_xception_fer2013.keras.sha256",
                                     "fervid/comms/curve.py"):
                copy.writestr(item, source.read(item))
        copy.writestr("services/__init__.py", "")
    problems = wheel_problems(broken)
    assert len(problems) == 3, problems
    assert "top of the wheel holds ['services'] besides fervid/" in problems[0]
    assert "fervid/comms/curve.py" in problems[1]
    assert "mini_xception_fer2013.keras.sha256" in problems[2]


def test_the_installed_copy_is_what_runs(installed, tmp_path):
    done = run_installed(installed, tmp_path, "-c", "import fervid.models, fervid.media.samples as s; "
                                                     "print(fervid.models.__file__); print(s.TWO_PEOPLE)")
    module, photo = map(Path, done.stdout.split())
    assert module.is_relative_to(installed) and photo.is_relative_to(installed) and photo.is_file()


def test_the_installed_copy_predicts_on_its_bundled_photo(installed, tmp_path):
    """Weights, their SHA-256 and the photo are found as package data in an installed layout."""
    photo = installed / "fervid" / "media" / "assets" / "two_people.jpg"
    done = run_installed(installed, tmp_path, "-m", "fervid.cli.main", "predict", str(photo), "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert len(result["faces"]) == 2


@pytest.mark.parametrize(("benchmark", "flag"), [("inference", "--crops"), ("detector", "--media")])
def test_an_installed_benchmark_asks_for_what_only_a_checkout_has(installed, tmp_path, benchmark, flag):
    done = run_installed(installed, tmp_path, "-m", f"fervid.benchmarks.{benchmark}", "--quick", "--json",
                         timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"fervid.benchmarks.{benchmark}: error: {flag} is required outside a fervid "
                                   f"checkout (its default lies in the checkout)")


def test_an_installed_benchmark_runs_on_an_input_it_is_given(installed, tmp_path):
    crops = tmp_path / "crops.csv.gz"
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "fer2013_sample.csv.gz", crops)
    done = run_installed(installed, tmp_path, "-m", "fervid.benchmarks.inference", "--quick", "--json",
                         "--crops", str(crops), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["parameters"]["crops"] == str(crops) and result["machine"]["git_commit"] is None
    assert result["parameters"]["model"].startswith(str(installed))
