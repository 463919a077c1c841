"""POST /v1/media against the real app, MongoDB (GridFS) and Redis: every accepted format, the
metadata rule, orientation, the limits (size while streaming, pixels before decoding), wrong types,
and the daily quota."""

from __future__ import annotations

import pillow_heif
import pytest
from bson import ObjectId
from PIL import Image

from solomo.core.images import MAX_PIXELS
from tests.media.helpers import (
    encoded,
    exif_with_gps,
    jpeg_with_gps,
    no_metadata,
    opened,
    picture,
    upload,
    uploaded,
)
from tests.support import register

pillow_heif.register_heif_opener()


async def fetch(client, url: str) -> bytes:
    resp = await client.get(url)
    assert resp.status_code == 200, resp.text
    return resp.content


def heic_with_gps() -> bytes:
    data = encoded(picture((640, 480)), "HEIF", exif=exif_with_gps().tobytes(), quality=80)
    assert data[4:12] == b"ftypheic" and opened(data).getexif()  # a real HEIC carrying EXIF
    return data


@pytest.mark.parametrize(("fmt", "served", "ctype"), [
    ("JPEG", "JPEG", "image/jpeg"), ("PNG", "PNG", "image/png"), ("WEBP", "WEBP", "image/webp"),
    ("GIF", "GIF", "image/gif"), ("HEIF", "JPEG", "image/jpeg")])
async def test_each_format_is_stored_clean_with_a_thumbnail_and_a_blurhash(client, fmt, served, ctype):
    alice = await register(client)
    if fmt == "HEIF":
        data = heic_with_gps()
    elif fmt == "GIF":
        data = encoded(picture((600, 300)), "GIF", comment=b"secret-serial-4711")
    else:
        data = encoded(picture((600, 300)), fmt, exif=exif_with_gps())
    # the declared type and name lie: the bytes decide
    resp = await upload(client, alice, data, name="x.txt", ctype="application/octet-stream")
    assert resp.status_code == 201, resp.text
    media = resp.json()
    assert media["type"] == "image" and media["id"] and len(media["blurhash"]) >= 6
    expected = (640, 480) if fmt == "HEIF" else (600, 300)
    assert (media["width"], media["height"]) == expected
    full_resp = await client.get(media["url"])
    assert full_resp.headers["content-type"] == ctype
    img = no_metadata(full_resp.content)
    assert img.format == served and img.size == expected
    thumb = no_metadata(await fetch(client, media["thumb_url"]))
    assert max(thumb.size) == 400 and thumb.size[0] > thumb.size[1]
    # the pixels survived: red on the left, blue on the right
    rgb = img.convert("RGB")
    left, right = rgb.getpixel((10, 10)), rgb.getpixel((expected[0] - 10, 10))
    assert left[0] > 150 and left[2] < 100 and right[2] > 150 and right[0] < 100
    assert media["url"] != media["thumb_url"] and len(media["url"].split("/")[-1].split(".")[0]) == 22


async def test_gps_exif_is_gone_and_orientation_applied(client):
    alice = await register(client)
    data = jpeg_with_gps(orientation=6)  # "rotate 90° clockwise to view": 600×300 stored, 300×600 seen
    assert opened(data).getexif().get_ifd(0x8825)  # the input has a GPS block
    media = await uploaded(client, alice, data)
    assert (media["width"], media["height"]) == (300, 600)
    img = no_metadata(await fetch(client, media["url"]))
    assert img.size == (300, 600)
    rgb = img.convert("RGB")  # red (the stored left) is now on top
    assert rgb.getpixel((150, 20))[0] > 150 and rgb.getpixel((150, 580))[2] > 150
    thumb = opened(await fetch(client, media["thumb_url"]))
    assert thumb.size == (200, 400)


async def test_the_first_frame_of_a_long_gif(client):
    alice = await register(client)
    frames = [Image.new("RGB", (64, 64), (i % 256, 0, 0)) for i in range(500)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    media = await uploaded(client, alice, data)
    img = opened(await fetch(client, media["url"]))
    assert getattr(img, "n_frames", 1) == 1


async def test_bad_files_are_refused_with_the_contracts_errors_and_nothing_stored(client, services):
    alice = await register(client)
    side = int(MAX_PIXELS ** 0.5) + 10
    bomb = encoded(Image.new("L", (side, side)), "PNG")  # a small file of too many pixels
    assert len(bomb) < 200_000
    huge_png = encoded(Image.new("1", (30_000, 30_000)), "PNG")
    jpeg = jpeg_with_gps()
    bmp = encoded(picture(), "BMP")
    cases = [
        (b"just some text, named .jpg", 415, "unsupported_media_type"),
        (bmp, 415, "unsupported_media_type"),
        (jpeg[: len(jpeg) // 2], 422, "invalid_image"),  # truncated
        (bomb, 422, "invalid_image"),
        (huge_png, 422, "invalid_image"),
        (b"", 415, "unsupported_media_type"),
    ]
    for data, status, code in cases:
        resp = await upload(client, alice, data)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert await services.db.media.count_documents({"owner_id": ObjectId(alice.id)}) == 0


async def test_not_multipart_or_no_file_part(client):
    alice = await register(client)
    resp = await client.post("/v1/media", json={"file": "x"}, headers=alice.headers)
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "unsupported_media_type"
    resp = await client.post("/v1/media", files={"photo": ("a.jpg", jpeg_with_gps(), "image/jpeg")},
                             headers=alice.headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid"
    resp = await client.post("/v1/media", content=b"--x\r\nbroken", headers={
        **alice.headers, "content-type": "multipart/form-data; boundary=x"})
    assert resp.status_code in (400, 422), resp.text
    resp = await client.post("/v1/media", files={"file": ("a.jpg", jpeg_with_gps(), "image/jpeg")})
    assert resp.status_code == 401


async def test_twelve_megabytes_are_refused_while_they_arrive(client, services):
    alice = await register(client)
    big = b"\xff\xd8\xff" + b"\0" * (12 * 1024 * 1024)
    resp = await upload(client, alice, big)  # with a Content-Length: refused from the header
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"

    sent = 0
    boundary = "b0undary"

    async def body():  # no Content-Length (chunked): refused once past the limit, not read to the end
        nonlocal sent
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for _ in range(50):
            sent += 1
            yield b"\0" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = await client.post("/v1/media", content=body(), headers={
        **alice.headers, "content-type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 413, resp.text
    assert sent <= 12, f"read {sent} MB before refusing"
    assert await services.db.media.count_documents({"owner_id": ObjectId(alice.id)}) == 0


async def test_daily_quota(client, services):
    alice = await register(client)
    small = encoded(picture((40, 20)), "PNG")
    before = services.settings.media_daily_quota
    services.settings.media_daily_quota = 3
    try:
        for _ in range(3):
            await uploaded(client, alice, small)
        resp = await upload(client, alice, small)
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
        assert int(resp.headers["retry-after"]) > 0
        other = await register(client)  # per user
        await uploaded(client, other, small)
    finally:
        services.settings.media_daily_quota = before
    assert await services.db.media.count_documents({"owner_id": ObjectId(alice.id)}) == 3


async def test_an_oversized_chunked_upload_over_a_real_socket_is_refused(client, services, live_server):
    """Through uvicorn, chunked (no Content-Length): 413, and the server stays well. (The app stops
    taking the body at 10 MB — the ASGI test above counts that; the server may still drain the rest
    from the socket, which costs no memory.)"""
    import httpx2

    alice = await register(client)
    boundary = "b0undary"

    async def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n").encode()
        for _ in range(20):
            yield b"\0" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    async with httpx2.AsyncClient(base_url=live_server, timeout=30) as http:
        try:
            resp = await http.post("/v1/media", content=body(), headers={
                **alice.headers, "content-type": f"multipart/form-data; boundary={boundary}"})
            assert resp.status_code == 413, resp.text
        except httpx2.TransportError:
            pass  # the server may answer and close while the client still writes: the same refusal
        assert (await http.get("/healthz")).status_code == 200
    # either way nothing was stored for it
    assert await services.db.media.count_documents({"owner_id": ObjectId(alice.id)}) == 0
    ok = await client.post("/v1/media", files={"file": ("a.png", encoded(picture((40, 20)), "PNG"), "image/png")},
                           headers=alice.headers)
    assert ok.status_code == 201
