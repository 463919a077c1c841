"""Stripping uploaded images of their metadata (contract: Privacy, Media) before anyone can fetch them.

:func:`strip_metadata` decodes the image and re-encodes its pixels alone, in its own format: EXIF
(GPS position, camera serial, time taken), XMP, IPTC, comments and text chunks are not carried
over, whatever container they hide in — copying pixels into a fresh image is safer than deleting
known tags one by one. The EXIF orientation is applied first, so the picture stays upright without
it. The ICC colour profile is kept: it says how to show the colours and nothing about the person.

Only the first frame of an animated GIF (or WebP) is kept. HEIC/HEIF needs a plug-in that is not
installed yet: such files are refused as unsupported for now.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from solomo.core.errors import ApiError, Invalid

FORMATS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 90, "optimize": True},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 90},
    "GIF": {},
}
"""Formats accepted (as Pillow names them, recognised from the bytes) and their re-encoding options."""
MAX_PIXELS = 40_000_000
"""Larger images are refused before their pixels are decoded (decompression bombs)."""
_MODES = {
    "JPEG": ("L", "RGB", "CMYK"),
    "PNG": ("1", "L", "LA", "RGB", "RGBA"),
    "WEBP": ("RGB", "RGBA"),
    "GIF": ("L", "RGB", "RGBA"),
}
"""Pixel modes each format is re-encoded from; anything else is converted to RGB(A) first."""


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


def strip_metadata(data: bytes) -> bytes:
    """``data`` re-encoded from its pixels alone (upright, first frame, ICC profile kept).

    415 ``unsupported_media_type`` for anything but JPEG, PNG, WebP and GIF; 422 ``invalid_image``
    for a corrupt file or one of more than :data:`MAX_PIXELS` pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in FORMATS:
                    raise UnsupportedMediaType("images must be JPEG, PNG, WebP or GIF")
                if img.width * img.height > MAX_PIXELS:
                    raise Invalid(f"images may have at most {MAX_PIXELS} pixels", code="invalid_image")
                icc = img.info.get("icc_profile")
                upright = ImageOps.exif_transpose(img)
                pixels = upright if upright.mode in _MODES[fmt] else upright.convert(_rgb_mode(upright, fmt))
                clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise (UnsupportedMediaType("not an image this service accepts") if isinstance(exc, UnidentifiedImageError)
               else Invalid("the image is too large when decoded", code="invalid_image")) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise Invalid("the image is corrupt", code="invalid_image") from None
    out = io.BytesIO()
    options = dict(FORMATS[fmt])
    if icc:
        options["icc_profile"] = icc
    clean.save(out, format=fmt, **options)
    return out.getvalue()


def _rgb_mode(img: Image.Image, fmt: str) -> str:
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    return "RGBA" if has_alpha and "RGBA" in _MODES[fmt] else "RGB"
