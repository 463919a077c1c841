"""Routes: photos — upload (``POST /v1/media``) and the files (``GET /media/<key>.<ext>``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from media.serving import find_file, publicly_visible, read_bytes
from media.store import media_public
from media.uploads import check_quota, upload
from solomo.api.models import MediaOut
from solomo.core.errors import ApiError, NotFound
from solomo.http import Ctx, endpoint, read_upload

IMMUTABLE = "public, max-age=31536000, immutable"
PRIVATE = "private, no-store"


@endpoint("POST /v1/media",
          summary="Upload a photo", response=MediaOut, status=201, tags=["media"], rate="media", upload="file",
          errors={413: "payload_too_large (over 10 MB)",
                  415: "unsupported_media_type (not JPEG, PNG, WebP, GIF or HEIC, whatever its name says)",
                  422: "invalid_image (corrupt, or over 40 megapixels), invalid (no part named file)",
                  429: "rate_limited (uploads per minute, or the daily quota)"},
          description="multipart/form-data with one part `file`. The type is recognised from the bytes. "
                      "Orientation is applied and every metadata block (EXIF, GPS, XMP, comments) stripped before "
                      "anyone can fetch it; HEIC is served as JPEG. Attach it within 24 hours "
                      "(`media_ids` of a post or check-in) or it is deleted.")
async def create(ctx: Ctx) -> dict[str, Any]:
    await check_quota(ctx.services, ctx.user.id)
    data = await read_upload(ctx.request, "file", ctx.services.settings.media_max_bytes)
    return media_public(await upload(ctx.services, ctx.user.id, data))


@endpoint("GET /media/{name}",
          summary="A photo or its thumbnail (the url / thumb_url of a Media)", auth=None, tags=["media"],
          errors={404: "not_found (unknown, or its post was removed or deleted)", 416: "range_not_satisfiable"},
          description="The image with its Content-Type, a strong ETag and Cache-Control: public, "
                      "max-age=31536000, immutable; If-None-Match → 304; one byte range (Range: bytes=a-b) → 206. "
                      "Moderators (Authorization header) also get the photos of removed and deleted posts.")
async def file(ctx: Ctx) -> Response:
    services, request = ctx.services, ctx.request
    found = await find_file(services, ctx.path["name"])
    if found is None:
        raise NotFound("no such photo")
    cache = IMMUTABLE
    if not await publicly_visible(services, found):
        if not await _moderator(ctx):
            raise NotFound("no such photo")
        cache = PRIVATE
    headers = {"ETag": found.etag, "Cache-Control": cache, "Accept-Ranges": "bytes"}
    if _matches(request.headers.get("if-none-match"), found.etag):
        return Response(status_code=304, headers=headers)
    span = _range(request.headers.get("range"), request.headers.get("if-range"), found.etag, found.length)
    if span is None:
        data = await read_bytes(services, found)
        return Response(data, media_type=found.content_type, headers=headers)
    start, end = span
    data = await read_bytes(services, found, start, end)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.length}"
    return Response(data, status_code=206, media_type=found.content_type, headers=headers)


async def _moderator(ctx: Ctx) -> bool:
    header = ctx.request.headers.get("authorization")
    if not header:
        return False
    try:
        principal = await ctx.services.authenticator.authenticate(header)
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
    if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) \
            or (last and not last.isdigit()):
        return None  # malformed: ignored, as RFC 9110 allows
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise _unsatisfiable(length)
        return max(0, length - n), length
    start = int(first)
    end = min(length, int(last) + 1) if last else length
    if start >= length or end <= start:
        raise _unsatisfiable(length)
    return start, end


def _unsatisfiable(length: int) -> ApiError:
    return ApiError("the range is outside the file", status=416, code="range_not_satisfiable",
                    headers={"Content-Range": f"bytes */{length}"})
