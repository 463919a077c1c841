"""Uploaded images (contract: Media, Privacy): recognised from their bytes, decoded within limits,
stripped of their metadata, re-encoded, with a thumbnail and a BlurHash.

One decoder, :func:`_decode`, serves both entry points: :func:`strip_metadata` (the cleaned image in
its own format) and :func:`process_image` (what the media route stores). It re-encodes the pixels
alone: EXIF (GPS position, camera serial, time taken), XMP, IPTC, comments and text chunks are not
carried over, whatever container they hide in — copying pixels into a fresh image is safer than
deleting known tags one by one. The EXIF orientation is applied first, so the picture stays upright
without it. The ICC colour profile is kept: it says how to show the colours and nothing about the
person.

Limits come before the pixels: the format is sniffed from the header (only the plug-ins of the
accepted formats are tried, so a text file named ``.jpg`` is 415), and the pixel count is read from
the header and refused above :data:`MAX_PIXELS` before anything is decoded (a decompression bomb
costs a few bytes of reading). Only the first frame of an animated GIF or WebP is decoded.

HEIC/HEIF (iPhone photos) is read through ``pillow-heif`` and served as JPEG (PNG if it has alpha):
browsers other than Safari cannot show HEIC. The work is CPU-bound: callers on an event loop run it
in a thread (:mod:`media.uploads`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import blurhash
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from solomo.core.errors import ApiError, Invalid

pillow_heif.register_heif_opener()  # adds "HEIF" to Pillow's formats (HEIC is HEIF with HEVC)

FORMATS: dict[str, dict[str, Any]] = {
    # no "optimize" for full JPEGs: a third of a 12-megapixel photo's processing time for ~5 % of bytes
    "JPEG": {"quality": 90},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 90},
    "GIF": {},
}
"""Formats served (as Pillow names them) and their re-encoding options."""
ACCEPTED = (*FORMATS, "HEIF")
"""Formats accepted on upload, recognised from the bytes."""
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
MAX_PIXELS = 40_000_000
"""Larger images are refused before their pixels are decoded (decompression bombs)."""
THUMB_MAX_SIDE = 400
"""A thumbnail's longer side, at most (contract: Media)."""
THUMB_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 80, "optimize": True}, "WEBP": {"quality": 80}}
"""Thumbnails: JPEG, or WebP when the picture has transparency."""
_MODES = {
    "JPEG": ("L", "RGB", "CMYK"),
    "PNG": ("1", "L", "LA", "RGB", "RGBA"),
    "WEBP": ("RGB", "RGBA"),
    "GIF": ("L", "RGB", "RGBA"),
}
"""Pixel modes each format is re-encoded from; anything else is converted to RGB(A) first."""
_BLURHASH_SIDE = 32
"""The BlurHash is computed from a copy this small: the hash holds a few colours, nothing finer."""


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


@dataclass(frozen=True)
class Encoded:
    data: bytes
    format: str
    """Pillow's name: JPEG, PNG, WEBP or GIF."""
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def etag(self) -> str:
        """A strong validator of these bytes (quoted, as the ETag header wants it)."""
        return '"' + hashlib.sha256(self.data).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class ProcessedImage:
    full: Encoded
    thumb: Encoded
    blurhash: str


def _decode(data: bytes) -> tuple[Image.Image, str, bytes | None]:
    """(upright pixels only, the source format, its ICC profile) — or 415/422."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(ACCEPTED)) as img:
                fmt = img.format or ""
                if fmt not in ACCEPTED:
                    raise UnsupportedMediaType("images must be JPEG, PNG, WebP, GIF or HEIC")
                if img.width * img.height > MAX_PIXELS:  # from the header: nothing decoded yet
                    raise Invalid(f"images may have at most {MAX_PIXELS} pixels", code="invalid_image")
                icc = img.info.get("icc_profile")
                upright = ImageOps.exif_transpose(img)  # decodes the first frame only
                out_fmt = _served_format(fmt, upright)
                pixels = upright if upright.mode in _MODES[out_fmt] else upright.convert(_rgb_mode(upright, out_fmt))
                # a fresh image holding the pixels only (no info dict: nothing the encoder could copy
                # out of it); paste copies the pixel memory once, without an intermediate bytes buffer
                clean = Image.new(pixels.mode, pixels.size)
                clean.paste(pixels)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise (UnsupportedMediaType("not an image this service accepts (JPEG, PNG, WebP, GIF or HEIC)")
               if isinstance(exc, UnidentifiedImageError)
               else Invalid("the image is too large when decoded", code="invalid_image")) from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError):
        # RuntimeError: pillow-heif's decoder on a damaged HEIC
        raise Invalid("the image is corrupt", code="invalid_image") from None
    return clean, fmt, icc if isinstance(icc, bytes) else None


def _served_format(fmt: str, img: Image.Image) -> str:
    if fmt != "HEIF":
        return fmt
    return "PNG" if _has_alpha(img) else "JPEG"


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def _rgb_mode(img: Image.Image, fmt: str) -> str:
    return "RGBA" if _has_alpha(img) and "RGBA" in _MODES[fmt] else "RGB"


def _encode(img: Image.Image, fmt: str, options: dict[str, Any], icc: bytes | None) -> Encoded:
    out = io.BytesIO()
    opts = dict(options)
    if icc and fmt != "GIF":
        opts["icc_profile"] = icc
    img.save(out, format=fmt, **opts)
    return Encoded(out.getvalue(), fmt, img.width, img.height)


def strip_metadata(data: bytes) -> bytes:
    """``data`` re-encoded from its pixels alone (upright, first frame, ICC profile kept); HEIC
    becomes JPEG (PNG with alpha).

    415 ``unsupported_media_type`` for anything but JPEG, PNG, WebP, GIF and HEIC/HEIF; 422
    ``invalid_image`` for a corrupt file or one of more than :data:`MAX_PIXELS` pixels."""
    clean, fmt, icc = _decode(data)
    out_fmt = _served_format(fmt, clean)
    return _encode(clean, out_fmt, FORMATS[out_fmt], icc).data


def process_image(data: bytes) -> ProcessedImage:
    """The upload as stored: clean full image (:func:`strip_metadata`'s), a thumbnail at most
    :data:`THUMB_MAX_SIDE` px on its longer side, and the BlurHash placeholder."""
    clean, fmt, icc = _decode(data)
    out_fmt = _served_format(fmt, clean)
    full = _encode(clean, out_fmt, FORMATS[out_fmt], icc)
    alpha = _has_alpha(clean)
    thumb_img = clean.convert("RGBA" if alpha else "RGB")
    # reducing_gap: a cheap integer shrink first, then Lanczos over the last factor of 2 (4x faster on
    # a camera photo, the same look at 400 px)
    thumb_img.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    thumb_fmt = "WEBP" if alpha else "JPEG"
    thumb = _encode(thumb_img, thumb_fmt, THUMB_OPTIONS[thumb_fmt], icc)
    return ProcessedImage(full, thumb, blurhash_of(thumb_img))


def blurhash_of(img: Image.Image) -> str:
    """The BlurHash of ``img`` (4 components on the longer side, 3 on the shorter)."""
    small = img.convert("RGB")
    small.thumbnail((_BLURHASH_SIDE, _BLURHASH_SIDE), Image.Resampling.BILINEAR)
    w, h = small.size
    raw = small.tobytes()
    rows = [[list(raw[(y * w + x) * 3:(y * w + x) * 3 + 3]) for x in range(w)] for y in range(h)]
    cx, cy = (4, 3) if w >= h else (3, 4)
    return str(blurhash.encode(rows, cx, cy))
