"""Where the shipped weights live (kept apart so the CLI can name them without importing Keras)."""
from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL_PATH: Path = WEIGHTS_DIR / "mini_xception_fer2013.keras"
