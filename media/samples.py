"""The media that ships inside the package: the sample clip the main job plays, and a photo.

Found with ``importlib.resources`` so the same names work from an editable install (the
repository's ``media/assets``) and from an installed wheel (``site-packages/fervid/media/assets``).
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

ASSETS_DIR: Path = Path(str(files("fervid.media") / "assets"))
SAMPLE_CLIP: Path = ASSETS_DIR / "short_hamilton_clip.mp4"
"""640x360, 29.97 fps, 275 frames: the source of the default configuration's one stream."""
TWO_PEOPLE: Path = ASSETS_DIR / "two_people.jpg"
"""Two portraits side by side (two faces): the photo for first runs and the app's screenshot."""
