"""Photos: uploading a 3 MB JPEG, serving thumbnails, and the home feed with photos in its posts.

The photo is made here with Pillow (no downloads): 4,000 × 3,000 pixels (a phone camera's 12 MP)
of gradients under smoothed noise — it compresses like a photograph, about 3 MB at JPEG quality
90. ``--scale`` below 1 shrinks its sides by √scale (at least 320 × 240), and the row says the size.

* **Media upload** — ``POST /v1/media`` with that photo as the ``file`` part of a
  ``multipart/form-data`` body, 16 clients for 15 s: token, the daily quota and the per-minute limit in
  Redis, the body parsed as it streams in, the type sniffed, decoding, orientation, metadata
  stripped, re-encoding, thumbnail and BlurHash (off the event loop, ``media_decode_concurrency``
  at a time), both files into GridFS. Baseline: the bare app's ``POST /upload`` — the same bytes
  parsed by Starlette's own form parser and dropped — same uvicorn flags, same generator and
  concurrency. The per-user limits are left at their defaults: the uploads are spread over 64
  users taking turns, so each one's share of a run stays far inside ``media`` (30/minute) and
  ``media_daily_quota`` (200); a 429 fails the row.
* **Media serving** — ``GET /media/<key>.t.jpg``: the thumbnails (400 px on the long side) of 8
  photos attached to a post, 64 clients, no token (the URLs are public). Ours: name check, the
  media document and the post's status (per-process cache, 30 s), the thumbnail bytes (per-process
  cache; GridFS on a miss), ETag and caching headers. Baseline: the **same bytes** written as 8
  static files under the web client's ``/static`` mount (``solomo/static/bench-<random>-<n>.jpg``,
  deleted when the row ends), served by Starlette's ``StaticFiles`` in **the same API process**,
  through the same middleware, same generator and concurrency.
* **Home feed with photos** — the home-feed row of :mod:`benchmarks.bench_feed_read` (40 authors
  × 50 posts, 256 readers, 20 a page, 64 clients) where every post carries 4 photos (copies of
  real uploads' media documents, attached to it as ``create_post`` attaches them; a page holds 80
  Media objects); baseline the bare ``GET /echo``. Issue 14's goal for the home feed: ratio ≥ 0.25.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import secrets
import urllib.request
from typing import Any

from PIL import Image

from benchmarks import bench_feed_read
from benchmarks.common import BenchEnv, HttpRequest, Result, compare_reads, drive, run_load
from benchmarks.seed import auth, bulk_users

PHOTO_SIZE = (4000, 3000)
PHOTO_QUALITY = 90
NOISE_SIGMA = 30
UPLOADERS = 64
UPLOAD_CONCURRENCY = 16
UPLOAD_WARMUP = 16
UPLOAD_SECONDS = 15.0  # an upload takes ~1 s of CPU: 8 s would hold a few dozen answers on a quiet machine
UPLOAD_MIN_SECONDS = 4.0  # even a quick run: an upload may take a second on a busy machine, wrk counts only answers
THUMBS = 8
THUMB_SOURCE_SIZE = (1600, 1200)
SERVE_CONCURRENCY = 64
SERVE_SECONDS = 8.0
PHOTOS_PER_POST = 4
BOUNDARY = "solomo-bench-3c9e1f"


def photo_jpeg(size: tuple[int, int], quality: int = PHOTO_QUALITY) -> bytes:
    """A photo-like JPEG: per channel a gradient (linear, radial, rotated) blended half and half
    with Gaussian noise drawn at half size and smoothed up — detail a camera's sensor would give,
    so it compresses like a photograph rather than like a flat test card."""
    w, h = size
    linear = Image.linear_gradient("L")
    bases = (linear.resize(size), Image.radial_gradient("L").resize(size),
             linear.transpose(Image.Transpose.ROTATE_90).resize(size))
    channels = [Image.blend(base, Image.effect_noise((max(1, w // 2), max(1, h // 2)), NOISE_SIGMA)
                            .resize(size, Image.Resampling.BILINEAR), 0.5) for base in bases]
    out = io.BytesIO()
    Image.merge("RGB", channels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def multipart(data: bytes, filename: str = "photo.jpg") -> tuple[bytes, str]:
    """(body, Content-Type) of a form with one part ``file``, as a browser sends a picked photo."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    f = min(1.0, math.sqrt(scale))
    return max(320, round(size[0] * f)), max(240, round(size[1] * f))


def uploaded(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
    ok = sum(1 for status, body in bodies if status == 201 and b'"thumb_url"' in body)
    return {"warmup_uploads_stored": f"{ok}/{len(bodies)}"}


def throttled(result: Result) -> Result:
    """A 429 means the limits, not the server, set the pace: the row is not a measurement."""
    other = result.extra.get("other_statuses") or {}
    if 429 in other:
        result.failures.append(f"{other[429]} uploads were rate-limited: spread them over more users")
    return result


async def upload_row(env: BenchEnv) -> Result:
    services = await env.services()
    size = scaled(PHOTO_SIZE, env.scale)
    photo = await asyncio.to_thread(photo_jpeg, size)
    body, ctype = multipart(photo)
    users = await bulk_users(services, UPLOADERS)
    ours = [HttpRequest("POST", "/v1/media", body, (*auth(tok), ("Content-Type", ctype))) for _, tok in users]
    base = [HttpRequest("POST", "/upload", body, (*auth(tok), ("Content-Type", ctype))) for _, tok in users]
    result = await compare_reads(
        env, f"media upload, {len(photo) / 1e6:.1f} MB JPEG {size[0]}×{size[1]}", ours, base,
        concurrency=UPLOAD_CONCURRENCY, seconds=max(UPLOAD_MIN_SECONDS, env.seconds(UPLOAD_SECONDS)),
        warmup=UPLOAD_WARMUP, check=uploaded,
        photo_bytes=len(photo), uploaders=UPLOADERS,
        limits="defaults (media 30/minute;300/hour, daily quota 200), uploads spread over the uploaders")
    result.extra["uploads_per_user"] = math.ceil((result.extra["requests"] + env.size(UPLOAD_WARMUP, 10)) / UPLOADERS)
    return throttled(result)


async def _thumbnails(env: BenchEnv) -> list[dict[str, Any]]:
    """``THUMBS`` photos uploaded through the domain and attached to one post; their media documents."""
    from feed.posts import create_post
    from media.uploads import upload
    from solomo.accounts import Principal

    services = await env.services()
    author = await services.accounts.create_user(f"fm_{secrets.token_hex(6)}", "password123")
    docs = []
    for _ in range(THUMBS):
        photo = await asyncio.to_thread(photo_jpeg, scaled(THUMB_SOURCE_SIZE, env.scale))
        docs.append(await upload(services, author["_id"], photo))
    who = Principal(author["_id"], author["username"], author["username"], "user")
    await create_post(services, who, "bench: eight photos", media_ids=[str(d["_id"]) for d in docs])
    return docs


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        data: bytes = resp.read()
        return data


async def serving_row(env: BenchEnv, docs: list[dict[str, Any]]) -> Result:
    from media.store import media_public
    from solomo.api.web import STATIC_DIR

    api = await env.api()
    paths = [media_public(d)["thumb_url"] for d in docs]
    thumbs = [await asyncio.to_thread(_get, api.base_url + p) for p in paths]
    tag = secrets.token_hex(4)
    files = [STATIC_DIR / f"bench-{tag}-{i}{p[p.rindex('.'):]}" for i, p in enumerate(paths)]
    try:
        for path, data in zip(files, thumbs, strict=True):
            path.write_bytes(data)
        ours = [HttpRequest("GET", p) for p in paths]
        base = [HttpRequest("GET", f"/static/{f.name}") for f in files]
        checks: dict[str, Any] = {}
        for side, reqs in (("", ours), ("baseline_", base)):
            bodies: list[tuple[int, bytes]] = []
            await run_load(api.port, list(itertools.islice(itertools.cycle(reqs), env.size(200, 10))),
                           concurrency=SERVE_CONCURRENCY, bodies=bodies)
            same = sum(1 for status, b in bodies if status == 200 and b in thumbs)
            checks[f"{side}warmup_same_bytes"] = f"{same}/{len(bodies)}"
        pids = {"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid}
        seconds = env.seconds(SERVE_SECONDS)
        mine = await drive(api.port, ours, concurrency=SERVE_CONCURRENCY, seconds=seconds, pids=pids)
        bare = await drive(api.port, base, concurrency=SERVE_CONCURRENCY, seconds=seconds, pids=pids)
    finally:
        for path in files:
            path.unlink(missing_ok=True)
    sizes = sorted(len(t) for t in thumbs)
    result = Result.from_loads(
        f"media serving, {len(thumbs)} thumbnails of {sizes[0] / 1000:.0f}–{sizes[-1] / 1000:.0f} kB "
        "(vs the same bytes as static files, same process)", mine, bare, concurrency=SERVE_CONCURRENCY,
        thumb_bytes=sizes, baseline_is="the same bytes under /static (StaticFiles) in the same API process", **checks)
    for side in ("", "baseline_"):
        got, of = checks[f"{side}warmup_same_bytes"].split("/")
        if got != of:
            result.failures.append(f"{side or 'ours: '}{got} of {of} answers were not the thumbnail's bytes")
    return result


async def feed_row(env: BenchEnv, templates: list[dict[str, Any]]) -> Result:
    services = await env.services()
    tokens = await bench_feed_read.seed(  # the same set-up as the plain home-feed row
        services, env.size(bench_feed_read.AUTHORS, bench_feed_read.FOLLOWS_EACH),
        env.size(bench_feed_read.READERS, 8), photos=templates, photos_per_post=PHOTOS_PER_POST)
    ours = [HttpRequest("GET", "/v1/feed/home?limit=20", headers=auth(t)) for t in tokens]
    base = [HttpRequest("GET", "/echo?limit=20", headers=auth(t)) for t in tokens]

    def check(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
        notes = bench_feed_read.full_pages(bodies)
        pages = [b for s, b in bodies if s == 200]
        notes["photos_per_page"] = min((b.count(b'"thumb_url"') for b in pages), default=0)
        return notes

    result = await compare_reads(env, f"home feed with photos ({PHOTOS_PER_POST} a post), 20/page", ours, base,
                                 concurrency=bench_feed_read.CONCURRENCY,
                                 seconds=env.seconds(bench_feed_read.SECONDS), check=check, readers=len(tokens),
                                 warmup=max(200, len(tokens)), goal_ratio=0.25)
    if result.extra["photos_per_page"] != 20 * PHOTOS_PER_POST:
        result.failures.append(f"a page held {result.extra['photos_per_page']} photos, not {20 * PHOTOS_PER_POST}")
    return result


async def run(env: BenchEnv) -> list[Result]:
    rows = [await upload_row(env)]
    docs = await _thumbnails(env)
    rows.append(await serving_row(env, docs))
    rows.append(await feed_row(env, docs))
    return rows
