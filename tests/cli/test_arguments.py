"""Bad arguments, as a user types them: one line ``fervid CMD: error: ...``, exit 2, nothing created.

These runs stop before any model, Ray or Qt is loaded, so each costs a Python start-up.
"""
from __future__ import annotations

import pytest

from fervid.cli.main import build_parser
from tests.conftest import SAMPLE_CSV, run_fervid


def assert_error_line(result, line: str) -> None:
    """Exit 2, nothing on stdout, and stderr exactly ``line``."""
    assert (result.returncode, result.stdout, result.stderr) == (2, "", line + "\n")


@pytest.mark.parametrize("args, line", [
    (["train", "--data", SAMPLE_CSV, "--epochs", "abc"],
     "fervid train: error: argument --epochs: invalid int value: 'abc' (see fervid train --help)"),
    (["evaluate", "--data", SAMPLE_CSV, "--split"],
     "fervid evaluate: error: argument --split: expected one argument (see fervid evaluate --help)"),
    ([], "fervid: error: the following arguments are required: COMMAND (see fervid --help)"),
    (["predict"], "fervid predict: error: the following arguments are required: IMAGE (see fervid predict --help)"),
])
def test_usage_errors_are_one_line_that_points_at_help(args, line):
    """argparse printed its usage block first: 2 to 8 lines, the problem in the last."""
    assert_error_line(run_fervid(*args, timeout=60), line)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5"])
def test_up_refuses_a_duration_that_never_ends_or_never_starts(capsys, value):
    """``--duration nan`` was accepted and the service never stopped (nan compares false with
    everything). Parsed in-process: a run that accepted it would start the service."""
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["up", f"--duration={value}"])  # "=": "-inf" is not taken for a flag
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"fervid up: error: argument --duration: must be a positive, finite number "
                                       f"of seconds, got {value!r} (see fervid up --help)\n")
    assert build_parser().parse_args(["up", "--duration", "2.5"]).duration == 2.5


@pytest.mark.parametrize("flag, value, line", [
    ("--lr", "-1", "--lr -1.0: must be greater than 0"),
    ("--label-smoothing", "5", "--label-smoothing 5.0: must be less than 1"),
    ("--augment", "nan", "--augment nan: must be a finite number"),
    ("--batch-size", "0", "--batch-size 0: must be greater than or equal to 1"),
    ("--limit", "5", "--limit 5: must be at least 20 rows (a validation slice is split off)"),
    ("--teacher-weight", "1.5", "--teacher-weight 1.5: must be less than or equal to 1"),
    ("--teacher-temperature", "0", "--teacher-temperature 0.0: must be greater than or equal to 0.1"),
])
def test_train_refuses_settings_that_cannot_train(tmp_path, flag, value, line):
    """Accepted before: 60 epochs at a negative learning rate. Refused before the data is read."""
    out = tmp_path / "run"
    result = run_fervid("train", "--data", SAMPLE_CSV, "--out", out, flag, value, timeout=60)
    assert_error_line(result, f"fervid train: error: {line}")
    assert not out.exists()


def test_train_refuses_a_teacher_that_is_no_model_before_anything_is_created(tmp_path):
    out = tmp_path / "run"
    result = run_fervid("train", "--data", SAMPLE_CSV, "--out", out, "--teacher", tmp_path / "missing.keras",
                        timeout=60)
    assert_error_line(result, f"fervid train: error: model file {tmp_path / 'missing.keras'} not found")
    assert not out.exists()


def test_train_refuses_an_out_that_is_a_file_or_lies_under_one(tmp_path):
    """A 15-line FileExistsError traceback before; now one line, and nothing is created."""
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    result = run_fervid("train", "--data", SAMPLE_CSV, "--out", a_file, timeout=60)
    assert_error_line(result, f"fervid train: error: --out {a_file}: is a file, not a folder")
    result = run_fervid("train", "--data", SAMPLE_CSV, "--out", a_file / "run", timeout=60)
    assert_error_line(result, f"fervid train: error: --out {a_file / 'run'}: {a_file} is a file, not a folder")
    assert a_file.read_text() == "keep me" and [p.name for p in tmp_path.iterdir()] == ["results.txt"]


def test_train_refuses_an_out_where_nothing_can_be_created():
    """/proc takes no folders, even from root (for whom every permission check says yes), so
    only the attempt finds out: still one line, and nothing is left behind."""
    out = "/proc/fervid-test-run/run"
    result = run_fervid("train", "--data", SAMPLE_CSV, "--limit", "40", "--epochs", "1", "--out", out, timeout=300)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("fervid train: error: ") and "/proc/fervid-test-run" in line, line
