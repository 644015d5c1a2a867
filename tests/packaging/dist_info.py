"""Real ``.dist-info`` folders for tests: put first on the path, importlib.metadata finds them first."""
from __future__ import annotations

from pathlib import Path


def write_dist_info(folder: Path, name: str, lines: list[str]) -> Path:
    """A minimal installed distribution ``name`` 1.0 in ``folder``, its METADATA holding ``lines``."""
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *lines])
                                   + "\n")
    return info
