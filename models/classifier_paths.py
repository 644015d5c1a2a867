"""Where the shipped weights live (kept apart so the CLI can name them without importing Keras).

Found with ``importlib.resources``: the repository's ``models/weights`` in an editable install,
``site-packages/fervid/models/weights`` from a wheel. Beside the weights lies their SHA-256 in
``sha256sum`` format (``cd weights && sha256sum -c *.sha256``), checked whenever they are loaded.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

WEIGHTS_DIR: Path = Path(str(files("fervid.models") / "weights"))
DEFAULT_MODEL_PATH: Path = WEIGHTS_DIR / "mini_xception_fer2013.keras"


def digest_path(model: Path) -> Path:
    """The ``.sha256`` file shipped beside ``model``."""
    return model.with_name(model.name + ".sha256")
