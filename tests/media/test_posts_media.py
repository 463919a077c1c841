"""Photos in posts and check-ins (media_ids), serving them (ETag, 304, ranges, caching), the
removed post's photos, avatars and the expiry of unused uploads — real app, MongoDB, Redis, Celery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from media.attach import claim_avatar
from solomo.core import tasknames
from solomo.core.errors import ApiError
from tests.checkins.helpers import checkin, new_store
from tests.feed.helpers import fanned_out, follow, page
from tests.media.helpers import encoded, picture, uploaded
from tests.support import make_account, register, wait_until

IMMUTABLE = "public, max-age=31536000, immutable"


def small(i: int = 0) -> bytes:
    return encoded(picture((80 + i, 40)), "PNG")


async def photos(client, account, n: int) -> list[dict]:
    return [await uploaded(client, account, small(i)) for i in range(n)]


async def post(client, account, **body):
    return await client.post("/v1/posts", json=body, headers=account.headers)


async def media_state(services, media: list[dict]) -> list[tuple[str, object]]:
    docs = {d["_id"]: d async for d in services.db.media.find({"_id": {"$in": [ObjectId(m["id"]) for m in media]}})}
    return [(docs[ObjectId(m["id"])]["status"], docs[ObjectId(m["id"])]["post_id"]) for m in media]


async def test_a_post_with_photos_reaches_a_follower_with_them(client, services, celery_worker):
    alice, bob = await register(client), await register(client)
    await follow(client, bob, alice)
    pics = await photos(client, alice, 2)
    resp = await post(client, alice, text="", media_ids=[pics[1]["id"], pics[0]["id"]])  # empty text is fine
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert [m["id"] for m in created["media"]] == [pics[1]["id"], pics[0]["id"]]
    assert created["media"][0] == pics[1]
    await fanned_out(services, created["id"])
    home = await page(client, bob, "/v1/feed/home")
    seen = next(p for p in home["items"] if p["id"] == created["id"])
    assert seen["media"] == created["media"]
    assert (await page(client, bob, f"/v1/posts/{created['id']}"))["media"] == created["media"]
    assert await media_state(services, pics) == [("attached", ObjectId(created["id"]))] * 2
    for m in seen["media"]:
        assert (await client.get(m["thumb_url"])).status_code == 200
    plain = await post(client, alice, text="words only")
    assert plain.json()["media"] == []


async def test_invalid_media_ids_write_nothing(client, services):
    alice, mallory = await register(client), await register(client)
    mine = await photos(client, alice, 10)
    theirs = (await photos(client, mallory, 1))[0]
    used = (await photos(client, alice, 1))[0]
    assert (await post(client, alice, text="first", media_ids=[used["id"]])).status_code == 201
    cases = [
        [m["id"] for m in mine],  # ten
        [theirs["id"]],  # someone else's
        [used["id"]],  # attached already
        [mine[0]["id"], mine[0]["id"]],  # twice
        ["not-an-id"],
        [str(ObjectId())],  # unknown
        [mine[0]["id"], theirs["id"]],  # one bad among good ones
    ]
    posts_before = await services.db.posts.count_documents({"author_id": ObjectId(alice.id)})
    for ids in cases:
        resp = await post(client, alice, text="with photos", media_ids=ids)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_media", (ids, resp.text)
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == posts_before
    assert {s for s, _ in await media_state(services, mine)} == {"pending"}
    resp = await post(client, alice, text="   ")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid"
    assert (await post(client, alice, text="nine", media_ids=[m["id"] for m in mine[:9]])).status_code == 201


async def test_two_posts_racing_for_one_photo(client, services):
    alice = await register(client)
    pic = (await photos(client, alice, 1))[0]
    answers = await asyncio.gather(*(post(client, alice, text=f"race {i}", media_ids=[pic["id"]]) for i in range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 422, 422, 422], [r.text for r in answers]
    winner = next(r.json() for r in answers if r.status_code == 201)
    assert await media_state(services, [pic]) == [("attached", ObjectId(winner["id"]))]
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_a_check_in_with_photos(client, services):
    merchant, alice = await register(client, "merchant"), await register(client)
    store = await new_store(client, merchant)
    pics = await photos(client, alice, 3)
    resp = await checkin(client, alice, store, media_ids=[m["id"] for m in pics])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert [m["id"] for m in body["post"]["media"]] == [m["id"] for m in pics]
    assert body["post"]["text"].startswith("checked in at")
    assert await media_state(services, pics) == [("attached", ObjectId(body["post"]["id"]))] * 3
    other = await new_store(client, merchant)
    resp = await checkin(client, alice, other, media_ids=[pics[0]["id"]])
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_media"
    assert await services.db.checkins.count_documents({"user_id": ObjectId(alice.id)}) == 1


async def test_serving_headers_304_and_ranges(client):
    alice = await register(client)
    media = await uploaded(client, alice)
    resp = await client.get(media["url"])
    assert resp.status_code == 200 and resp.headers["cache-control"] == IMMUTABLE
    etag, body = resp.headers["etag"], resp.content
    assert etag.startswith('"') and int(resp.headers["content-length"]) == len(body)
    again = await client.get(media["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await client.get(media["url"], headers={"If-None-Match": '"other"'})).status_code == 200
    part = await client.get(media["url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == body[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(body)}"
    tail = await client.get(media["url"], headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == body[-5:]
    past = await client.get(media["url"], headers={"Range": f"bytes={len(body)}-"})
    assert past.status_code == 416 and past.json()["error"]["code"] == "range_not_satisfiable"
    stale = await client.get(media["url"], headers={"Range": "bytes=0-1", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == body
    thumb = await client.get(media["thumb_url"])
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.headers["etag"] != etag
    key = media["url"].rsplit("/", 1)[1].split(".")[0]
    other = key[:-1] + ("B" if key[-1] == "A" else "A")  # a key one character off
    for bad in (f"/media/{key}.png", f"/media/{other}.jpg", "/media/../../etc/passwd", "/media/x"):
        assert (await client.get(bad)).status_code == 404, bad


async def test_odd_range_numbers_answer_like_other_ranges_never_500(client):
    alice = await register(client)
    media = await uploaded(client, alice)
    body = (await client.get(media["url"])).content
    huge = "9" * 5000  # over Python's limit on the digits int() converts
    for header, status, content in [
        (b"bytes=\xb2-", 200, body),  # "\xb2" is "²" in Latin-1: a digit to str.isdigit, not to HTTP
        (b"bytes=0-\xb3", 200, body),
        (b"bytes=-\xb9", 200, body),
        (f"bytes={huge}-", 416, None),  # starts past the end
        (f"bytes={huge}-{huge}", 416, None),
        (f"bytes=0-{huge}", 206, body),  # ends past the end: up to the end
        (f"bytes=-{huge}", 206, body),  # more than the whole file: all of it
        ("bytes=" + "0" * 5000 + "10-19", 206, body[10:20]),  # leading zeros are still the number
    ]:
        resp = await client.get(media["url"], headers={"Range": header})
        assert resp.status_code == status, (str(header)[:40], resp.status_code, resp.text[:200])
        if content is None:
            assert resp.json()["error"]["code"] == "range_not_satisfiable"
            assert resp.headers["content-range"] == f"bytes */{len(body)}"
        else:
            assert resp.content == content


async def test_a_large_picture_is_streamed_whole_and_by_range(client):
    from PIL import Image, ImageFilter

    from media.serving import STREAM_OVER_BYTES

    alice = await register(client)
    noisy = Image.effect_noise((2400, 1800), 60).convert("RGB").filter(ImageFilter.GaussianBlur(1))
    media = await uploaded(client, alice, encoded(noisy, "JPEG", quality=95))
    whole = await client.get(media["url"])
    assert whole.status_code == 200 and len(whole.content) > STREAM_OVER_BYTES  # the streamed path
    assert int(whole.headers["content-length"]) == len(whole.content)
    assert whole.content[:2] == b"\xff\xd8" and whole.content[-2:] == b"\xff\xd9"
    start = 300 * 1024 - 7  # across GridFS chunk boundaries
    part = await client.get(media["url"], headers={"Range": f"bytes={start}-"})
    assert part.status_code == 206 and part.content == whole.content[start:]


async def test_photos_of_removed_and_deleted_posts_answer_404_but_to_moderators(client, services):
    alice = await register(client)
    moderator = await make_account(services, "moderator")
    pics = await photos(client, alice, 2)
    one_preview = await client.get(pics[0]["url"])  # fetched while unattached (the uploader's preview)
    assert one_preview.status_code == 200
    one = (await post(client, alice, text="soon removed", media_ids=[pics[0]["id"]])).json()
    two = (await post(client, alice, text="soon deleted", media_ids=[pics[1]["id"]])).json()
    for p in (one, two):
        assert (await client.get(p["media"][0]["url"])).status_code == 200  # cached as visible now
    resp = await client.post(f"/v1/moderation/posts/{one['id']}", headers=moderator.headers,
                             json={"action": "remove", "reason": "test"})
    assert resp.status_code == 200, resp.text
    assert (await client.delete(f"/v1/posts/{two['id']}", headers=alice.headers)).status_code == 204
    for p in (one, two):
        for url in (p["media"][0]["url"], p["media"][0]["thumb_url"]):
            assert (await client.get(url)).status_code == 404
            assert (await client.get(url, headers=alice.headers)).status_code == 404
        seen = await client.get(p["media"][0]["url"], headers=moderator.headers)
        assert seen.status_code == 200 and seen.headers["cache-control"] == "private, no-store"
    resp = await client.post(f"/v1/moderation/posts/{one['id']}", headers=moderator.headers,
                             json={"action": "restore", "reason": "test"})
    assert resp.status_code == 200, resp.text
    assert (await client.get(one["media"][0]["url"])).status_code == 200


async def test_claim_avatar(client, services):
    alice, bob = await register(client), await register(client)
    pic, attached, theirs = await photos(client, alice, 2) + await photos(client, bob, 1)
    assert (await post(client, alice, text="x", media_ids=[attached["id"]])).status_code == 201
    avatar = await claim_avatar(services, ObjectId(alice.id), pic["id"])
    assert avatar == pic
    assert await claim_avatar(services, ObjectId(alice.id), ObjectId(pic["id"])) == pic  # again: fine
    for who, media_id in ((alice, attached["id"]), (alice, theirs["id"]), (alice, "zz"), (bob, pic["id"])):
        try:
            await claim_avatar(services, ObjectId(who.id), media_id)
        except ApiError as exc:
            assert (exc.status, exc.code) == (422, "invalid_media")
        else:
            raise AssertionError(f"{media_id} claimed")
    resp = await post(client, alice, text="avatar in a post", media_ids=[pic["id"]])
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_media"
    assert (await client.get(avatar["url"])).status_code == 200


async def test_unused_uploads_expire_through_the_beat_task(client, services, celery_worker):
    alice = await register(client)
    old, fresh, used, avatar = await photos(client, alice, 4)
    assert (await post(client, alice, text="keeps its photo", media_ids=[used["id"]])).status_code == 201
    await claim_avatar(services, ObjectId(alice.id), avatar["id"])
    past = datetime.now(UTC) - timedelta(minutes=1)
    await services.db.media.update_many({"_id": {"$in": [ObjectId(old["id"])]}}, {"$set": {"expires_at": past}})
    resp = await post(client, alice, text="too late", media_ids=[old["id"]])
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_media"
    doc = await services.db.media.find_one({"_id": ObjectId(old["id"])})
    await services.tasks.send(tasknames.MEDIA_EXPIRE)

    files = services.db["mediafs.files"]
    file_ids = [doc["full"]["file_id"], doc["thumb"]["file_id"]]
    assert await files.count_documents({"_id": {"$in": file_ids}}) == 2

    async def gone() -> bool:  # the document first, then its files
        return (await services.db.media.find_one({"_id": ObjectId(old["id"])}) is None
                and await files.count_documents({"_id": {"$in": file_ids}}) == 0)

    await wait_until(gone, timeout=20)
    assert (await client.get(old["url"])).status_code == 404
    assert await services.db["mediafs.chunks"].count_documents({"files_id": doc["full"]["file_id"]}) == 0
    remaining = await services.db.media.count_documents(
        {"_id": {"$in": [ObjectId(m["id"]) for m in (fresh, used, avatar)]}})
    assert remaining == 3
    for m in (fresh, used, avatar):
        assert (await client.get(m["thumb_url"])).status_code == 200


async def test_a_retried_post_with_photos_gets_its_first_answer(client, services):
    alice = await register(client)
    pics = await photos(client, alice, 2)
    body = {"text": "once", "media_ids": [m["id"] for m in pics]}
    headers = {**alice.headers, "Idempotency-Key": f"photos-{ObjectId()}"}
    first = await client.post("/v1/posts", json=body, headers=headers)
    again = await client.post("/v1/posts", json=body, headers=headers)  # the photos are taken now: a replay
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1
