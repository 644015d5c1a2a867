"""Build fervid's wheel, install it (not editable) in a fresh virtual environment, and run it from outside.

What a user of ``pip install fervid[cpu]`` gets, checked end to end:

1. the wheel holds ``fervid/`` and its dist-info and nothing else at its top, every module of the
   folders that pyproject's package-dir maps, and the package data (weights and their SHA-256, the
   sample clip and photo, the detector benchmark's truth);
2. installed with the CPU backend only, nothing but ``fervid`` and its dist-info lands at the top of
   site-packages (the installed RECORD says so);
3. from a folder outside the repository: ``fervid predict`` finds the two faces of the bundled photo
   (``fervid.media.samples.TWO_PEOPLE``, read from the installed package), and ``fervid up
   --duration 15`` without ``--config`` serves the bundled clip (its last status line counts processed
   frames);
4. what the core install leaves out says so: the gui, training and bench extras are reported missing,
   a benchmark that needs the bench extra names it, ``fervid app``, ``monitor`` and ``train`` name the
   extra they need in one line (exit 2), and an installed benchmark asks for the input its checkout
   default would have supplied.

    python tests/packaging/check_wheel.py [--keep DIR]

.ci/run runs it after the test suite: ``fervid up`` binds 127.0.0.1:5556 and :9108, as tests do.
Prints one line per check and exits 1 at the first failure (0 when everything passed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
DIST_INFO = f"fervid-{VERSION}.dist-info"
PACKAGE_DATA = ("fervid/models/weights/mini_xception_fer2013.keras",
                "fervid/models/weights/mini_xception_fer2013.keras.sha256",
                "fervid/media/assets/short_hamilton_clip.mp4",
                "fervid/media/assets/two_people.jpg",
                "fervid/benchmarks/data/faces.json")
UP_SECONDS = 15


class CheckFailed(Exception):
    """One check did not hold; the message says which and why, in one line."""


def copy_sources(dest: Path) -> Path:
    """What the build reads (pyproject, README, the package-dir folders) copied to ``dest``.

    Building from a copy keeps setuptools' ``build/`` and egg-info out of the shared checkout.
    """
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for folder in sorted(set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def build_wheel(workdir: Path) -> Path:
    """Build the wheel of the current sources with pip (isolated build, as a user's install does)."""
    source = copy_sources(workdir / "source")
    out = workdir / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, text=True)
    (wheel,) = out.glob("fervid-*.whl")
    return wheel


def source_modules() -> set[str]:
    """Every ``.py`` file the package-dir folders hold, as its path inside the wheel."""
    modules = set()
    for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        root = REPO / folder
        prefix = Path(*package.split("."))
        modules |= {(prefix / path.relative_to(root)).as_posix() for path in root.rglob("*.py")
                    if "__pycache__" not in path.parts}
    return modules


def wheel_problems(wheel: Path) -> list[str]:
    """What is wrong with the wheel's file list (empty when nothing is)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top_level = archive.read(f"{DIST_INFO}/top_level.txt").decode().split()
    problems = []
    tops = {name.split("/", 1)[0] for name in names}
    if tops != {"fervid", DIST_INFO}:
        problems.append(f"top of the wheel holds {sorted(tops - {'fervid', DIST_INFO})} besides fervid/")
    if top_level != ["fervid"]:
        problems.append(f"top_level.txt names {top_level}, not just fervid")
    missing_modules = source_modules() - names
    if missing_modules:
        problems.append(f"modules missing (a package not listed in [tool.setuptools] packages?): "
                        f"{sorted(missing_modules)}")
    missing_data = [name for name in PACKAGE_DATA if name not in names]
    if missing_data:
        problems.append(f"package data missing: {missing_data}")
    return problems


def installed_top_level(site_packages: Path) -> set[str]:
    """The top-level entries of site-packages that the installed fervid's RECORD lists."""
    record = (site_packages / DIST_INFO / "RECORD").read_text(encoding="utf-8").splitlines()
    paths = [line.rsplit(",", 2)[0] for line in record if line]
    return {path.split("/", 1)[0] for path in paths if not path.startswith("..")}


def run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``command`` as a user would run it: no PYTHONPATH or virtualenv of the caller leaking in."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def ok(message: str) -> None:
    print(f"check_wheel: ok: {message}", flush=True)


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def check(workdir: Path) -> None:
    started = time.monotonic()
    wheel = build_wheel(workdir)
    problems = wheel_problems(wheel)
    expect(not problems, "; ".join(problems))
    ok(f"{wheel.name} holds fervid/ and {DIST_INFO}/ only, every module and the package data")

    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, fervid = venv / "bin" / "python", venv / "bin" / "fervid"
    install = run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   f"{wheel}[cpu]"], cwd=workdir, timeout=1500)
    expect(install.returncode == 0, f"pip install {wheel.name}[cpu] failed: {last_line(install.stderr)}")
    site_packages = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             cwd=workdir, timeout=60).stdout.strip())
    tops = installed_top_level(site_packages)
    expect(tops == {"fervid", DIST_INFO}, f"the wheel installed {sorted(tops)} at the top of site-packages")
    ok(f"installed (not editable) with the CPU backend in {time.monotonic() - started:.0f} s; "
       f"site-packages gained only fervid/ and {DIST_INFO}/")

    outside = workdir / "elsewhere"  # not the repository, not a parent of it
    outside.mkdir()
    located = run([str(python), "-c", "from fervid.media.samples import TWO_PEOPLE; print(TWO_PEOPLE)"],
                  cwd=outside, timeout=60)
    photo = Path(located.stdout.strip())
    expect(located.returncode == 0 and photo.is_relative_to(site_packages) and photo.is_file(),
           f"the bundled photo is not read from the installed package: {located.stdout.strip()} "
           f"{last_line(located.stderr)}")
    predicted = run([str(fervid), "predict", str(photo), "--json"], cwd=outside, timeout=300)
    expect(predicted.returncode == 0, f"fervid predict failed: {last_line(predicted.stderr)}")
    (result,) = json.loads(predicted.stdout)
    faces = result["faces"]
    expect(len(faces) == 2, f"fervid predict found {len(faces)} faces in {photo.name}, expected 2")
    ok(f"fervid predict {photo.name} --json: 2 faces ({', '.join(face['emotion'] for face in faces)})")

    probe = ("import json; from fervid.extras import missing; "
             "print(json.dumps({extra: missing(extra) for extra in ('gui', 'training', 'analysis', 'bench')}))")
    absent = json.loads(run([str(python), "-c", probe], cwd=outside, timeout=60).stdout)
    expect(all(absent.values()) and "PyQt5" in absent["gui"] and "matplotlib" in absent["training"],
           f"the core install should lack the gui, training, analysis and bench extras: {absent}")
    ok(f"the core install reports its missing extras: {absent}")
    bench = run([str(python), "-m", "fervid.benchmarks.inference", "--quick", "--json"], cwd=outside, timeout=120)
    expect(bench.returncode == 2 and bench.stdout == ""
           and bench.stderr.strip() == "fervid.benchmarks.inference: error: --crops is required outside a "
                                       "fervid checkout (its default lies in the checkout)",
           f"the installed inference benchmark without --crops: exit {bench.returncode}, {bench.stderr.strip()!r}")
    ok("the installed inference benchmark asks for --crops in one line (exit 2)")
    bench = run([str(python), "-m", "fervid.benchmarks.pipeline", "--quick", "--json"], cwd=outside, timeout=120)
    expect(bench.returncode == 2 and "needs fervid's 'bench' extra" in bench.stderr
           and len(bench.stderr.strip().splitlines()) == 1,
           f"the pipeline benchmark without the bench extra: exit {bench.returncode}, {bench.stderr.strip()[-300:]!r}")
    ok(f"without the bench extra: {bench.stderr.strip()}")
    for command, extra in ((["app"], "gui"), (["monitor", "sample"], "gui"),
                           (["train", "--data", str(photo)], "training"),
                           (["analyze", str(photo), "--out", str(outside / "analysis")], "analysis")):
        refused = run([str(fervid), *command], cwd=outside, timeout=120)
        expect(refused.returncode == 2 and refused.stderr.strip().splitlines() == [
                   f"fervid {command[0]}: error: fervid {command[0]} needs fervid's '{extra}' extra, which is not "
                   f"installed (missing {', '.join(absent[extra])}): pip install 'fervid[{extra}]'"],
               f"fervid {command[0]} without the {extra} extra: exit {refused.returncode}, {refused.stderr.strip()!r}")
        ok(f"fervid {command[0]} without the {extra} extra: {refused.stderr.strip()}")

    up = run([str(fervid), "up", "--duration", str(UP_SECONDS)], cwd=outside, timeout=UP_SECONDS + 300)
    expect(up.returncode == 0, f"fervid up failed (exit {up.returncode}): {last_line(up.stderr)}")
    status = [line for line in up.stdout.splitlines() if " processed" in line]
    expect(bool(status), f"fervid up printed no status line: {up.stdout[-500:]!r}")
    processed = int(re.search(r"(\d+) processed", status[-1]).group(1))
    expect(processed > 0, f"fervid up processed no frame: {status[-1]}")
    ok(f"fervid up --duration {UP_SECONDS} (no --config): {status[-1].strip()}")
    print(f"check_wheel: passed in {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it: wheel, venv, outputs")
    args = parser.parse_args(argv)
    try:
        if args.keep:
            args.keep.mkdir(parents=True)
            check(args.keep.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="fervid-wheel-") as workdir:
                check(Path(workdir))
    except (CheckFailed, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = exc.stderr.strip().splitlines()[-1:] if isinstance(exc, subprocess.CalledProcessError) and exc.stderr \
            else []
        print(f"check_wheel: FAILED: {exc}{' (' + detail[0] + ')' if detail else ''}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
