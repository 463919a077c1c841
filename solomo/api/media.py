"""Routes: photos — upload (``POST /v1/media``) and the files (``GET /media/<key>.<ext>``).

The files are not API routes: their URLs are opaque (the Media's ``url`` / ``thumb_url``), public
and off ``/v1`` like the web client's static files, so they are plain Starlette routes
(``extra_routes``) outside the OpenAPI document; the upload route's description tells clients what
a GET on them answers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from media.serving import STREAM_OVER_BYTES, MediaFile, find_file, publicly_visible, read_bytes, stream_bytes
from media.store import media_public
from media.uploads import check_quota, upload
from solomo.api.models import MediaOut
from solomo.core.errors import ApiError, NotFound
from solomo.core.services import Services
from solomo.http import Ctx, endpoint, read_upload

IMMUTABLE = "public, max-age=31536000, immutable"
PRIVATE = "private, no-store"
POSITION_DIGITS = 18
"""Significant digits read of a range's byte position: 10**18 bytes is past the end of any file."""


@endpoint("POST /v1/media",
          summary="Upload a photo", response=MediaOut, status=201, tags=["media"], rate="media", upload="file",
          errors={413: "payload_too_large (over 10 MB)",
                  415: "unsupported_media_type (not JPEG, PNG, WebP, GIF or HEIC, whatever its name says)",
                  422: "invalid_image (corrupt, or over 40 megapixels), invalid (no part named file)",
                  429: "rate_limited (uploads per minute, or the daily quota)"},
          description="multipart/form-data with one part `file`. The type is recognised from the bytes. "
                      "Orientation is applied and every metadata block (EXIF, GPS, XMP, comments) stripped before "
                      "anyone can fetch it; HEIC is served as JPEG. Attach it within 24 hours "
                      "(`media_ids` of a post or check-in) or it is deleted. A GET on its `url` or `thumb_url` "
                      "(public, no token) answers the image with its Content-Type, a strong ETag and "
                      "Cache-Control: public, max-age=31536000, immutable; If-None-Match → 304; one byte range "
                      "(Range: bytes=a-b) → 206, past the end → 416 range_not_satisfiable; 404 once its post is "
                      "removed or deleted (moderators, with their Authorization header, still get it).")
async def create(ctx: Ctx) -> dict[str, Any]:
    await check_quota(ctx.services, ctx.user.id)
    data = await read_upload(ctx.request, "file", ctx.services.settings.media_max_bytes)
    return media_public(await upload(ctx.services, ctx.user.id, data))


async def file(request: Request) -> Response:
    """``GET /media/<key>.<ext>``: the picture or (``.t.``) its thumbnail."""
    services: Services = request.app.state.services
    found = await find_file(services, request.path_params["name"])
    if found is None:
        raise NotFound("no such photo")
    cache = IMMUTABLE
    if not await publicly_visible(services, found):
        if not await _moderator(services, request):
            raise NotFound("no such photo")
        cache = PRIVATE
    headers = {"ETag": found.etag, "Cache-Control": cache, "Accept-Ranges": "bytes"}
    if _matches(request.headers.get("if-none-match"), found.etag):
        return Response(status_code=304, headers=headers)
    span = _range(request.headers.get("range"), request.headers.get("if-range"), found.etag, found.length)
    if span is None:
        return await _body(services, found, 0, found.length, 200, headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.length}"
    return await _body(services, found, start, end, 206, headers)


extra_routes = [Route("/media/{name}", file, methods=["GET"])]


async def _body(services: Services, found: MediaFile, start: int, end: int, status: int,
                headers: dict[str, str]) -> Response:
    if end - start <= STREAM_OVER_BYTES:
        data = await read_bytes(services, found, start, end)
        return Response(data, status_code=status, media_type=found.content_type, headers=headers)
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(stream_bytes(services, found, start, end), status_code=status,
                             media_type=found.content_type, headers=headers)


async def _moderator(services: Services, request: Request) -> bool:
    header = request.headers.get("authorization")
    if not header:
        return False
    try:
        principal = await services.authenticator.authenticate(header)
    except ApiError:
        return False  # a bad token reads as no token here: the photo stays hidden
    return principal.role == "moderator"


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _range(header: str | None, if_range: str | None, etag: str, length: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as (start, end exclusive); None for the whole file (no header, several
    ranges, another unit, or an If-Range that no longer matches); 416 if it starts past the end."""
    if not header or (if_range is not None and if_range.strip() != etag):
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    start, last_pos = _position(first), _position(last)
    if not dash or (first and start is None) or (last and last_pos is None):
        return None  # malformed: ignored, as RFC 9110 allows
    if start is None:
        if last_pos is None:
            return None  # "bytes=-": no position at all, malformed too
        if last_pos == 0:
            raise _unsatisfiable(length)
        return max(0, length - last_pos), length  # the last N bytes
    end = min(length, last_pos + 1) if last_pos is not None else length
    if start >= length or end <= start:
        raise _unsatisfiable(length)
    return start, end


def _position(text: str) -> int | None:
    """A byte position of a range (``1*DIGIT``: ASCII digits only, as str.isdigit also takes "²",
    which int() refuses), or None. RFC 9110 puts no bound on its length, so more significant digits
    than :data:`POSITION_DIGITS` read as ``10**POSITION_DIGITS``: past the end of any photo, and no
    conversion of thousands of digits (int() refuses over 4,300)."""
    if not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0")
    return int(digits or "0") if len(digits) <= POSITION_DIGITS else 10 ** POSITION_DIGITS


def _unsatisfiable(length: int) -> ApiError:
    return ApiError("the range is outside the file", status=416, code="range_not_satisfiable",
                    headers={"Content-Range": f"bytes */{length}"})
