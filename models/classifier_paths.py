"""Where the shipped weights live (kept apart so the CLI can name them without importing Keras).

Found with ``importlib.resources``: the repository's ``models/weights`` in an editable install,
``site-packages/fervid/models/weights`` from a wheel.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

WEIGHTS_DIR: Path = Path(str(files("fervid.models") / "weights"))
DEFAULT_MODEL_PATH: Path = WEIGHTS_DIR / "mini_xception_fer2013.keras"
