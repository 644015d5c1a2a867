"""Error types that the command line turns into one clear line and a non-zero exit.

Anything a user can cause (a bad file, a bad flag, a missing model) raises a subclass of
:class:`FervidError` with a message that names the culprit; anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations


class FervidError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ModelLoadError(FervidError):
    """The weights file is missing, truncated, corrupt or of the wrong architecture."""


class ImageLoadError(FervidError):
    """An image file cannot be read safely (not an image, truncated, too large)."""


class VideoError(FervidError):
    """A video file cannot be analysed: missing, not a video, no frames, truncated."""


class AnalysisOutputError(FervidError):
    """An analysis output folder cannot be used: unwritable, or holding another video's results."""
