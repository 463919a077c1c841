"""Local topics in the browser: the hot topics page's nearby tab (同城) and a topic page switched
between everywhere and near me, from the real service (uvicorn, Celery worker, MongoDB, Redis)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.feed.helpers import fanned_out, post
from tests.support import offset, random_point, register
from tests.web.guards import require_routes


@pytest.fixture
def shots() -> Path:
    """Where this story's screenshots go: the team's notes folder, looked at by people."""
    folder = Path("/work/notes/shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_nearby_hot_topics_and_a_topic_near_me(phone, client, services, live_server, celery_worker, shots):
    await require_routes(client, "GET /v1/topics/hot", "GET /v1/topics/{topic}/posts", "POST /v1/posts")
    here, there = random_point(), random_point()
    local_tag, far_tag = f"外滩夜景{uuid.uuid4().hex[:4]}", f"故宫初雪{uuid.uuid4().hex[:4]}"
    people = [await register(client) for _ in range(3)]
    made = []
    for i, who in enumerate(people):
        spot = offset(*here, 300 * i, 200 * i)
        made.append(await post(client, who, f"#{local_tag}# 今晚的灯光 {i}", lat=spot[0], lng=spot[1]))
        made.append(await post(client, who, f"#{far_tag}# 太美了 {i}", lat=there[0], lng=there[1]))
    far_post = await post(client, people[0], f"#{local_tag}# 在外地也想念", lat=there[0], lng=there[1])
    for p in (*made, far_post):
        await fanned_out(services, p["id"])
    reader = await register(client)

    page = await phone(lat=here[0], lng=here[1])
    await page.login(reader.username)
    await page.route("#/topics")
    await page.page.locator("nav.seg a[data-scope=near]").click()
    await page.page.wait_for_function("document.body.dataset.view === '#/topics/near'")
    near_list = page.page.locator("ol.hot-topics[data-scope=near]")
    await near_list.locator("a.topic", has_text=local_tag).wait_for()
    assert await near_list.locator("a.topic", has_text=far_tag).count() == 0
    assert "3 posts" in await near_list.locator("li", has_text=local_tag).inner_text()
    assert "Within 20 km" in await page.page.locator(".lt-where").inner_text()
    await page.screenshot(shots / "localtopics-hot-nearby-en.png")

    # the topic opens near me: only the posts around here, then everywhere: the far one too
    await near_list.locator("a.topic", has_text=local_tag).click()
    feed = page.page.locator("section.feed[data-scope=near]")
    await feed.locator("article.post").first.wait_for()
    assert await feed.locator("article.post").count() == 3
    assert await feed.locator("article.post", has_text="在外地也想念").count() == 0
    await page.screenshot(shots / "localtopics-topic-near-en.png")
    await page.page.locator("nav.seg a[data-scope=everywhere]").click()
    everywhere = page.page.locator("section.feed[data-scope=everywhere]")
    await everywhere.locator("article.post", has_text="在外地也想念").wait_for()
    assert await everywhere.locator("article.post").count() == 4

    # in Chinese
    await page.page.locator("button.lang-switch").click()
    await page.route("#/topics/near")
    near_zh = page.page.locator("ol.hot-topics[data-scope=near]")
    await near_zh.locator("a.topic", has_text=local_tag).wait_for()
    assert await page.page.locator("nav.seg a.active").inner_text() == "同城"
    await page.screenshot(shots / "localtopics-hot-nearby-zh.png")
    page.assert_clean()
