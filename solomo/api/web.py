"""The mobile web client: ``/`` and ``/static/...`` (files shipped inside the package, nothing
fetched from elsewhere), plus the two small routes only the client needs:

- ``GET /web/qr.svg?text=`` — a QR code (SVG, drawn by ``segno``) for a voucher code, so an
  ``<img>`` can show it without a bearer token; it encodes only the text the page already holds.
- ``GET /v1/me/stores`` — the signed-in merchant's stores (the contract has no such list).

The installable app (issue 16): ``GET /manifest.webmanifest`` (``application/manifest+json``) and
``GET /sw.js``, the service worker, served from the root so that its scope is the whole app. Its
text is ``static/sw.js`` after two generated lines: the shell's files (everything under
``static/`` a page can load, so a view added later is cached without editing a list) and a
version hashed from their contents (a deploy that changes any of them installs a new worker, which
replaces the old cache).
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import segno
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from solomo.api.models import LaxQuery
from solomo.core.errors import Invalid
from solomo.core.pagination import Page, PageQuery, keyset_page
from solomo.http import Ctx, endpoint, parse_query

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
QR_MAX_CHARS = 256
NO_CACHE = {"Cache-Control": "no-cache"}


SHELL_SUFFIXES = (".js", ".css", ".svg", ".png", ".webmanifest")
"""What the service worker caches on install: the page's own files (not the worker itself)."""


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=NO_CACHE)


async def manifest(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "manifest.webmanifest", media_type="application/manifest+json",
                        headers=NO_CACHE)


@lru_cache(maxsize=1)
def service_worker_text() -> bytes:
    files = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file() and p.suffix in SHELL_SUFFIXES
                   and p.name != "sw.js")
    digest = hashlib.sha256()
    for path in [*files, STATIC_DIR / "index.html", STATIC_DIR / "sw.js"]:
        digest.update(path.relative_to(STATIC_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    shell = ["/", "/manifest.webmanifest", *(f"/static/{p.relative_to(STATIC_DIR).as_posix()}" for p in files)]
    head = (f"const SHELL_VERSION = {json.dumps(digest.hexdigest()[:16])};\n"
            f"const SHELL = {json.dumps(shell)};\n")
    return head.encode() + (STATIC_DIR / "sw.js").read_bytes()


async def service_worker(request: Request) -> Response:
    # no-cache: the browser checks for a new worker on every visit (it would anyway after 24 h)
    return Response(service_worker_text(), media_type="text/javascript",
                    headers={**NO_CACHE, "Service-Worker-Allowed": "/"})


class QrQuery(LaxQuery):
    text: str = Field(min_length=1, max_length=QR_MAX_CHARS, description="What the code encodes")
    scale: int = Field(6, ge=1, le=20, description="Pixels per module")


def qr_svg(text: str, scale: int = 6) -> bytes:
    """An SVG QR code (error correction M, quiet zone of 4 modules as the standard asks)."""
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="svg", scale=scale, border=4, xmldecl=False,
                                        dark="#000", light="#fff")
    return out.getvalue()


async def qr(request: Request) -> Response:
    query: QrQuery = parse_query(request, QrQuery)
    if any(ord(ch) < 32 for ch in query.text):
        raise Invalid("text must not contain control characters")
    return Response(qr_svg(query.text, query.scale), media_type="image/svg+xml",
                    headers={"Cache-Control": "private, max-age=3600"})


class MyStoresQuery(PageQuery):
    limit: int = Field(50, ge=1, le=100, description="Items per page (1..100)")


class MyStoreOut(BaseModel):
    id: str
    name: str
    lat: float
    lng: float
    category: str | None
    address: str | None
    checkins_count: int
    followers_count: int


class MyStoresPage(Page[MyStoreOut]):
    pass


def _my_store(doc: dict[str, Any]) -> dict[str, Any]:
    lng, lat = doc["location"]["coordinates"]
    return {"id": str(doc["_id"]), "name": doc["name"], "lat": lat, "lng": lng,
            "category": doc.get("category"), "address": doc.get("address"),
            "checkins_count": int(doc.get("checkins_count", 0)),
            "followers_count": int(doc.get("followers_count", 0))}


@endpoint("GET /v1/me/stores",
          summary="The signed-in merchant's stores, oldest first", query=MyStoresQuery, response=MyStoresPage,
          auth=("merchant",), tags=["stores"],
          description="Used by the web client's merchant console; other roles get 403.")
async def my_stores(ctx: Ctx) -> dict[str, Any]:
    q: MyStoresQuery = ctx.query
    docs, nxt = await keyset_page(ctx.services.db.stores, {"owner_id": ctx.user.id}, score_field=None,
                                  descending=False, position=ctx.services.cursors.decode_position(q.cursor),
                                  limit=q.limit)
    return ctx.services.cursors.page([_my_store(d) for d in docs], nxt)


extra_routes: list[BaseRoute] = [
    Route("/", index, methods=["GET"], include_in_schema=False),
    Route("/manifest.webmanifest", manifest, methods=["GET"], include_in_schema=False),
    Route("/sw.js", service_worker, methods=["GET"], include_in_schema=False),
    Route("/web/qr.svg", qr, methods=["GET"], include_in_schema=False),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR, check_dir=False), name="static"),
]
