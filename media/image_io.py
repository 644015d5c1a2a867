"""Safe loading of still images from disk or bytes.

Pillow reads the header first, so a decompression bomb (say a 30000x30000 PNG of a few KB) is
refused before any pixel is decoded. EXIF orientation is applied (phone photos), and CMYK,
16-bit, palette, alpha and greyscale images all come back as 8-bit BGR for OpenCV. EXIF is only
metadata: a damaged EXIF block is ignored (the picture is intact), never an error or a warning.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from fervid.errors import ImageLoadError
from fervid.media.files import check_regular_file

MAX_IMAGE_PIXELS: int = 64_000_000
"""Largest image accepted (64 megapixels, about 200 MB decoded as BGR)."""

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM",
                              5: "TRANSPOSE", 6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
"""EXIF orientation -> the ``PIL.Image.Transpose`` that shows the picture upright."""


def _upright(image):
    """Apply the EXIF orientation tag, ignoring EXIF that cannot be parsed.

    ``ImageOps.exif_transpose`` also rewrites the EXIF block, and raises (``struct.error``) on
    tags whose type was damaged; the pixels are fine, so only the orientation is read here.
    """
    from PIL import Image

    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # damaged EXIF: Pillow raises many types; the picture itself is intact
        return image
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(getattr(Image.Transpose, method)) if method else image


def _to_bgr(image) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        grey = np.clip(array * (255.0 / max(peak, 255.0)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def load_image(source: str | Path | bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file (or its bytes) into an 8-bit BGR array, or raise ImageLoadError."""
    from PIL import Image, UnidentifiedImageError

    name = "image bytes" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)):
        check_regular_file(source, "an image file", ImageLoadError)
    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except OSError as exc:  # removed or changed since the check above
        raise ImageLoadError(f"{name}: cannot open ({exc.strerror or exc})") from None
    with handle:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(handle)
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageLoadError(f"{name}: {width}x{height} is too large to decode safely "
                                         f"(limit {max_pixels:,} pixels)")
                image.load()
                image = _upright(image)
                return _to_bgr(image)
        except ImageLoadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(f"{name}: too large to decode safely ({exc})") from None
        except UnidentifiedImageError:
            raise ImageLoadError(f"{name}: not an image (or an unsupported format)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageLoadError(f"{name}: corrupt or truncated image ({exc})") from None
