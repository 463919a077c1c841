"""Photos in the browser (issue 15): a user posts two photos from the compose form (previews,
upload progress, removal), a follower's open home page shows them live in the nine-grid with
BlurHash placeholders and thumbnails, and the full-screen viewer swipes between them."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.support import random_point, register, unique_name
from tests.web.browser import LIVE_TIMEOUT_MS
from tests.web.guards import require_routes, require_websocket


def photo(colour: tuple[int, int, int], size: tuple[int, int], fmt: str = "JPEG") -> bytes:
    img = Image.new("RGB", size, colour)
    img.paste((255, 255, 255), (size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


async def follow(client, who, target) -> None:
    resp = await client.post(f"/v1/users/{target.id}/follow", headers=who.headers)
    assert resp.status_code == 204, resp.text


@pytest.fixture
def shots(screenshots) -> Path:
    """The screenshots folder, or SOLOMO_SHOTS_DIR (where a reviewer wants them)."""
    folder = Path(os.environ.get("SOLOMO_SHOTS_DIR") or screenshots)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_two_photos_reach_a_followers_open_page(phone, client, live_server, celery_worker, shots):
    await require_routes(client, "POST /v1/media", "POST /v1/posts", "GET /v1/feed/home")
    alice, bob = await register(client), await register(client)
    await require_websocket(live_server, bob.token)
    await follow(client, bob, alice)

    bob_page = await phone()
    await bob_page.login(bob.username)
    await bob_page.page.wait_for_function("document.body.dataset.view === '#/home'")
    await bob_page.wait_socket_open()

    alice_page = await phone(locale="zh-CN")  # the compose sheet in Chinese
    await alice_page.login(alice.username)
    page = alice_page.page
    form = page.locator("form.compose")
    files = [{"name": f"p{i}.jpg", "mimeType": "image/jpeg", "buffer": photo(c, s)} for i, (c, s) in
             enumerate([((200, 40, 40), (1200, 900)), ((40, 90, 200), (900, 1200)), ((40, 160, 60), (800, 800))])]
    await form.locator("input.photo-input").set_input_files(files)
    await page.wait_for_function("document.querySelectorAll('form.compose .photo-pick.done').length === 3")
    assert await form.locator(".photo-add small").inner_text() == "图片"
    await form.locator(".photo-pick").nth(2).locator("button.photo-remove").click()  # changed my mind
    assert await form.locator(".photo-pick").count() == 2
    text = f"两张照片 #{unique_name('pics')}#"
    await form.locator("textarea").fill(text)
    await alice_page.screenshot(shots / "photos-compose.png")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(".toast:has-text('已发布')")
    assert await form.locator(".photo-pick").count() == 0  # the form is ready for the next post

    card = bob_page.page.locator("article.post", has_text="两张照片")
    await card.wait_for(timeout=LIVE_TIMEOUT_MS)
    grid = card.locator(".photo-grid")
    assert await grid.get_attribute("data-count") == "2"
    await bob_page.page.wait_for_function(
        "(el) => [...el.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0)",
        arg=await grid.element_handle())
    # thumbnails, not the full pictures; the placeholders were painted from the BlurHash
    srcs = await grid.locator("img").evaluate_all("(imgs) => imgs.map((i) => i.getAttribute('src'))")
    assert all(".t.jpg" in s for s in srcs), srcs
    painted = await grid.locator("canvas.blur").evaluate_all(
        "(cs) => cs.map((c) => c.getContext('2d').getImageData(12, 12, 1, 1).data[3])")
    assert painted == [255, 255]
    await card.scroll_into_view_if_needed()
    await bob_page.screenshot(shots / "photos-grid.png")

    # the viewer: full pictures, a swipe to the second, Escape closes
    await grid.locator("button.photo-cell").first.click()
    viewer = bob_page.page.locator(".viewer")
    await viewer.wait_for()
    assert await viewer.locator(".viewer-count").inner_text() == "1 / 2"
    box = await viewer.bounding_box()
    mouse = bob_page.page.mouse
    await mouse.move(box["width"] * 0.8, box["height"] / 2)
    await mouse.down()
    await mouse.move(box["width"] * 0.2, box["height"] / 2, steps=8)
    await mouse.up()
    await bob_page.page.wait_for_function("document.querySelector('.viewer-count').textContent === '2 / 2'")
    second = viewer.locator(".viewer-slide").nth(1)
    await second.locator("img").evaluate("(i) => i.decode()")
    assert ".t." not in await second.locator("img").get_attribute("src")
    await bob_page.page.wait_for_function(  # shown, not only loaded
        "getComputedStyle(document.querySelectorAll('.viewer-slide img')[1]).opacity === '1'")
    await bob_page.screenshot(shots / "photos-viewer.png")
    await bob_page.page.keyboard.press("Escape")
    assert await viewer.count() == 0
    bob_page.assert_clean()
    alice_page.assert_clean()


async def test_a_check_in_with_a_photo(phone, client, live_server, shots):
    await require_routes(client, "POST /v1/media", "POST /v1/checkins", "GET /v1/stores/{id}")
    merchant, alice = await register(client, role="merchant"), await register(client)
    lat, lng = random_point()
    resp = await client.post("/v1/stores", headers=merchant.headers, json={
        "name": unique_name("Cafe"), "lat": lat, "lng": lng, "category": "cafe"})
    assert resp.status_code == 201, resp.text
    store = resp.json()
    alice_page = await phone(lat=lat, lng=lng)
    await alice_page.login(alice.username)
    await alice_page.route(f"#/store/{store['id']}")
    page = alice_page.page
    await page.locator(".store-head button.checkin").click()
    form = page.locator("form.checkin-form")
    await form.locator("input.photo-input").set_input_files(
        [{"name": "cup.png", "mimeType": "image/png", "buffer": photo((120, 80, 50), (640, 640), "PNG")}])
    await page.wait_for_selector("form.checkin-form .photo-pick.done")
    await alice_page.screenshot(shots / "photos-checkin.png")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(f".toast:has-text('Checked in at {store['name']}')")
    checkins = (await client.get(f"/v1/stores/{store['id']}/posts", headers=alice.headers)).json()["items"]
    assert len(checkins) == 1 and len(checkins[0]["media"]) == 1 and checkins[0]["kind"] == "checkin"

    # nine photos: the 3 × 3 grid
    ids = []
    for i in range(9):
        resp = await client.post("/v1/media", headers=alice.headers, files={"file": (
            f"{i}.jpg", photo((30 + 25 * i, 140, 230 - 20 * i), (500, 300 + 40 * i)), "image/jpeg")})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    resp = await client.post("/v1/posts", headers=alice.headers, json={"text": "九宫格 #nine", "media_ids": ids})
    assert resp.status_code == 201, resp.text
    await alice_page.route(f"#/post/{resp.json()['id']}")
    grid = page.locator(".photo-grid.grid-three")
    await grid.wait_for()
    assert await grid.locator("button.photo-cell").count() == 9
    await page.wait_for_function(
        "(el) => [...el.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0)",
        arg=await grid.element_handle())
    await alice_page.screenshot(shots / "photos-ninegrid.png")
    alice_page.assert_clean()
