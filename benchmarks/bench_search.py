"""Search: stores over 100,000 stores and posts over 100,000 posts, 64 clients, beside the bare endpoint.

Set-up (not timed): 100,000 stores over a disc of 20 km (names like ``人民咖啡 Square Coffee``: 20
places × 20 kinds, half with a Latin part; keys from :func:`solomo.core.searchkeys.store_keys`, as
``create_store`` writes them), bulk-inserted; 100,000 published posts by 200 authors whose texts
mix a few of 40 Chinese words and some English (keys from ``post_keys``, as ``build_post`` writes
them).

Store row: each request is a user at a random point within 15 km of the centre searching
``q`` = ``咖啡`` (a 2-character Chinese substring), ``kafei`` (pinyin) or ``squ`` (a Latin word
prefix) in turn, within 5 km, 20 a page: the tiers of ``search.stores`` through ``$geoNear`` on
``(search_keys, location)``, then the page's stores and mayors. Post row: ``q`` =
two Chinese words (about one post in 130 holds both, one in 10 the first), newest first, 20 a page:
``search.posts``' windows of both words' Redis listings (built from MongoDB by the warm-up's first
search), intersected in the API, the hits through the post cache, blocks and mutes read. The
baseline is the bare ``GET /echo`` with the same query string.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, Result, compare_reads
from benchmarks.seed import auth, bulk_users, point_near, random_center
from geo.geojson import geo_point
from search import indexes as search_indexes
from solomo.core.searchkeys import post_keys, store_keys
from solomo.core.timeutil import ms_of

STORES = 100_000
POSTS = 100_000
AUTHORS = 200
READERS = 256
AREA_M = 20_000
READ_WITHIN_M = 15_000
RADIUS_M = 5000
CONCURRENCY = 64
SECONDS = 8.0
INSERT_BATCH = 5000
PLACES = ["人民", "南京", "静安", "徐家汇", "陆家嘴", "外滩", "淮海", "新天地", "豫园", "虹桥",
          "五角场", "中山", "长宁", "古北", "世纪", "田子坊", "七宝", "松江", "浦东", "老西门"]
KINDS = [("咖啡", "Square Coffee", "cafe"), ("茶馆", "Tea House", "cafe"), ("面馆", "Noodles", "food"),
         ("川菜", "Sichuan Kitchen", "food"), ("书店", "Books", "shopping"), ("烧烤", "BBQ", "food"),
         ("火锅", "Hotpot", "food"), ("超市", "Market", "grocery"), ("花店", "Flowers", "shopping"),
         ("酒吧", "Bar", "bar"), ("面包", "Bakery", "food"), ("健身", "Gym", "sports"),
         ("影城", "Cinema", "entertainment"), ("酒店", "Hotel", "hotel"), ("诊所", "Clinic", "health"),
         ("琴行", "Music", "education"), ("洗衣", "Laundry", "services"), ("甜品", "Desserts", "food"),
         ("寿司", "Sushi", "food"), ("小笼", "Dumplings", "food")]
WORDS = ["咖啡", "拿铁", "周末", "朋友", "阳光", "排队", "好吃", "推荐", "打卡", "下午茶", "公园", "地铁",
         "上海", "人民广场", "夜景", "散步", "新店", "优惠", "蛋糕", "火锅", "小笼包", "电影", "书店", "音乐",
         "雨天", "早餐", "午饭", "晚饭", "甜品", "奶茶", "健身", "跑步", "猫咪", "小狗", "花开", "拍照",
         "外滩", "老街", "安静", "热闹"]
LATIN = ["great", "coffee", "weekend", "sunny", "queue", "latte", "friends", "walk"]
STORE_QUERIES = ["咖啡", "kafei", "squ"]
POST_QUERY = "咖啡 拿铁"


async def _bulk_load(services: Any, collection: str, batches: Iterator[list[dict[str, Any]]]) -> None:
    """Inserts the batches with the collection's search indexes dropped, then builds them again
    (the same ``IndexModel`` s the API creates): a bulk index build sorts the ~90 keys of each of
    100,000 stores once, where inserting into live multikey indexes was on course for 25 minutes on a
    busy 2-core machine. The measured requests see the same indexes either way."""
    coll = services.db[collection]
    models = search_indexes.INDEXES[collection]
    existing = {ix["name"] async for ix in await coll.list_indexes()}
    for model in models:
        if model.document["name"] in existing:
            await coll.drop_index(model.document["name"])
    for docs in batches:
        await coll.insert_many(docs, ordered=False)
    await coll.create_indexes(models)


async def seed_stores(services: Any, n: int, rng: random.Random) -> tuple[float, float]:
    lat0, lng0 = random_center(rng)
    (owner, _), *_ = await bulk_users(services, 1, role="merchant")
    keys: dict[str, list[str]] = {}
    now = datetime.now(UTC)

    def batches() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, n, INSERT_BATCH):
            docs = []
            for i in range(start, min(n, start + INSERT_BATCH)):
                place, (kind, latin, category) = PLACES[i % len(PLACES)], KINDS[(i // len(PLACES)) % len(KINDS)]
                name = f"{place}{kind}" + (f" {latin}" if i % 2 else "")
                lat, lng = point_near(rng, lat0, lng0, AREA_M)
                docs.append({"_id": ObjectId(), "name": name, "search_keys": keys.setdefault(name, store_keys(name)),
                             "category": category, "address": f"{i} 号", "owner_id": owner,
                             "location": geo_point(lat, lng), "checkin_radius_m": 200, "checkins_count": 0,
                             "unique_visitors": 0, "followers_count": 0, "mayor_id": None, "created_at": now})
            yield docs

    await _bulk_load(services, "stores", batches())
    return lat0, lng0


async def seed_posts(services: Any, n: int, rng: random.Random) -> None:
    authors = [uid for uid, _ in await bulk_users(services, AUTHORS)]
    start_at = datetime.now(UTC) - timedelta(days=30)

    def batches() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, n, INSERT_BATCH):
            docs = []
            for i in range(start, min(n, start + INSERT_BATCH)):
                text = "，".join(rng.sample(WORDS, 4)) + " " + " ".join(rng.sample(LATIN, 2))
                at = start_at + timedelta(seconds=i * 25)
                docs.append({"_id": ObjectId(), "author_id": rng.choice(authors), "text": text,
                             "search_keys": post_keys(text), "topics": [], "topic_keys": [], "mention_ids": [],
                             "mentions": [], "store_id": None, "store_owner_post": False, "location": None,
                             "kind": "post", "checkin_id": None, "status": "published", "flags": [],
                             "fanout": "done", "like_count": 0, "comment_count": 0, "created_at": at,
                             "created_ms": ms_of(at)})
            yield docs

    await _bulk_load(services, "posts", batches())


def answered(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
    ok = sum(1 for status, body in bodies if status == 200 and b'"items":[{' in body)
    return {"warmup_nonempty_pages": f"{ok}/{len(bodies)}"}


async def run(env: BenchEnv) -> list[Result]:
    services = await env.services()
    rng = random.Random(16)
    stores = env.size(STORES, 2000)
    lat0, lng0 = await seed_stores(services, stores, rng)
    posts = env.size(POSTS, 2000)
    await seed_posts(services, posts, rng)
    readers = await bulk_users(services, env.size(READERS, 8))
    queries = []
    for i in range(len(readers)):
        lat, lng = point_near(rng, lat0, lng0, READ_WITHIN_M)
        q = quote(STORE_QUERIES[i % len(STORE_QUERIES)])
        queries.append(f"q={q}&lat={lat:.6f}&lng={lng:.6f}&radius_m={RADIUS_M}&limit=20")
    pairs = list(zip(queries, readers, strict=True))
    store_ours = [HttpRequest("GET", f"/v1/search/stores?{q}", headers=auth(tok)) for q, (_, tok) in pairs]
    store_base = [HttpRequest("GET", f"/echo?{q}", headers=auth(tok)) for q, (_, tok) in pairs]
    post_q = f"q={quote(POST_QUERY)}&limit=20"
    post_ours = [HttpRequest("GET", f"/v1/search/posts?{post_q}", headers=auth(tok)) for _, tok in readers]
    post_base = [HttpRequest("GET", f"/echo?{post_q}", headers=auth(tok)) for _, tok in readers]
    return [
        await compare_reads(env, f"store search, {stores:,} stores, 咖啡/kafei/squ within 5 km, 20/page",
                            store_ours, store_base, concurrency=CONCURRENCY, seconds=env.seconds(SECONDS),
                            check=answered, stores=stores),
        await compare_reads(env, f"post search, {posts:,} posts, two Chinese words, 20/page", post_ours, post_base,
                            concurrency=CONCURRENCY, seconds=env.seconds(SECONDS), check=answered, posts=posts),
    ]
