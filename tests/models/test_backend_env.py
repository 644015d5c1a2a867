"""configure_tensorflow: oneDNN off for training, TensorFlow's default (on) for serving; the environment wins.

Serving keeps oneDNN because an alternated A/B of the classifier measured it faster
(benchmarks.onednn_ab, docs/performance.md); training turns it off because it crashed there.

Each case runs in a fresh interpreter that then imports TensorFlow: TensorFlow prints its oneDNN banner
at import exactly when the kernels are on, whatever the log level, so the tests see the real effect.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fervid.models.backend_env import INTERACTIVE, SERVING, TRAINING, configure_tensorflow

BANNER = "oneDNN custom operations are on"


def tensorflow_started(purpose: str, onednn: str | None) -> tuple[str, str]:
    """``TF_ENABLE_ONEDNN_OPTS`` after configure_tensorflow(purpose), and TensorFlow's import-time stderr."""
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    script = ("import os, sys\n"
              "from fervid.models.backend_env import configure_tensorflow\n"
              f"configure_tensorflow({purpose!r})\n"
              "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))\n"
              "import tensorflow\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip(), done.stderr


def test_serving_keeps_tensorflows_default_onednn_on():
    setting, stderr = tensorflow_started(SERVING, None)
    assert setting == "unset" and BANNER in stderr


@pytest.mark.parametrize("purpose", [TRAINING, INTERACTIVE])
def test_training_and_terminal_commands_turn_onednn_off(purpose):
    """Training crashed with it; terminal commands would get its banner on stderr."""
    setting, stderr = tensorflow_started(purpose, None)
    assert setting == "0" and BANNER not in stderr and "absl::InitializeLog" not in stderr


@pytest.mark.parametrize(("purpose", "explicit", "banner"), [(TRAINING, "1", True), (SERVING, "0", False)])
def test_an_explicit_setting_wins(purpose, explicit, banner):
    setting, stderr = tensorflow_started(purpose, explicit)
    assert setting == explicit and (BANNER in stderr) == banner


def test_an_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="purpose must be"):
        configure_tensorflow("inference")
