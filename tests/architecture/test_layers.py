"""The layer contract of pyproject.toml ([tool.importlinter]) holds, and it does catch an upward import.

Grimp, which import-linter uses, finds a package's modules by walking its folder. The editable install
maps ``fervid.models`` to ``models/`` and so on, so ``fervid``'s own folder holds only ``__init__`` and
``errors``: run on the checkout, the contract would see two modules. The tests therefore lint a copy of
the sources laid out as the wheel lays them out, and check that the copy is what was analysed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def wheel_layout(dest: Path) -> int:
    """Copy every package's ``.py`` files to ``dest/fervid/<pkg>`` per package-dir; return the count."""
    package_dir = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    copied = 0
    for package, folder in package_dir.items():
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in (REPO / folder).glob("*.py"):
            shutil.copy2(source, target / source.name)
            copied += 1
    return copied


def lint(tree: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` on the repository's contracts with only ``tree`` on the path for fervid."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(PYPROJECT)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def resolved_package(tree: Path, cwd: Path) -> Path:
    """Where a subprocess with ``tree`` on its path finds ``fervid.models`` (the copy, not the checkout)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    found = subprocess.run([sys.executable, "-c", "import fervid.models; print(fervid.models.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True)
    return Path(found.stdout.strip())


def test_contracts_hold_on_the_real_tree(tmp_path):
    tree = tmp_path / "site"
    assert wheel_layout(tree) > 50
    assert resolved_package(tree, cwd=tmp_path).is_relative_to(tree)
    result = lint(tree, cwd=tmp_path)
    # Had grimp seen only the editable install's fervid/ folder, the layers would be missing (exit 1).
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("models/labels.py", "import fervid.services.config", "fervid layers: an import never points up"),
    ("gui/qt_image.py", "from fervid.services import config", "fervid layers: an import never points up"),
    ("analysis/face_rows.py", "import fervid.services.analysis_pool", "fervid layers: an import never points up"),
    ("analysis/face_rows.py", "import PyQt5.QtCore", "analysis imports neither Ray nor Qt"),
    ("analysis/runner.py", "import ray", "analysis imports neither Ray nor Qt"),
    ("models/preprocessing.py", "import ray", "media, models and comms import neither Ray nor Qt"),
    ("media/sources.py", "import zmq", "media and models do not import ZMQ (comms owns the sockets)"),
    ("gui/qt_image.py", "import ray.util", "gui does not import Ray"),
    ("cli/__init__.py", "import fervid.benchmarks.common", "nothing imports fervid.benchmarks"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, broken):
    """An import added to a copy of one module is found, and the contract it breaks is named."""
    tree = tmp_path / "site"
    wheel_layout(tree)
    target = tree / "fervid" / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    result = lint(tree, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert re.search(re.escape(broken) + r".* BROKEN", result.stdout), result.stdout
