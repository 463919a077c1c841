"""The demo city: a few merchants' stores around People's Square, Shanghai, people who follow
each other and the stores, three weeks of check-ins, posts with ``#话题#`` and ``#tag`` topics,
likes, comments, reposts (one a //@ chain), live offers and a report for the moderator — so a
newcomer sees a living feed.

Everything goes through the service's own rules: today's activity through the public routes (an
in-process client over :func:`solomo.app.create_app`), the history through the domain functions
that take an explicit time (:func:`checkins.checkin.check_in` with ``now``,
:func:`feed.posts.create_post` with ``created_at``), in time order so the check-in rules hold.
It never touches a database that already has users.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from solomo.accounts import Principal
from solomo.core.services import Services

CENTER = (31.2304, 121.4737)  # People's Square
PASSWORD = "solomo-demo"
HISTORY_DAYS = 20


class SeedError(RuntimeError):
    """A step of the seed was refused by the service."""


@dataclass
class Person:
    username: str
    display_name: str
    role: str
    id: str = ""
    token: str = ""

    def principal(self) -> Principal:
        from bson import ObjectId

        return Principal(ObjectId(self.id), self.username, self.display_name, self.role)


MERCHANTS = [
    Person("lin_coffee", "林记咖啡 Lin's Coffee", "merchant"),
    Person("wang_cinema", "王经理 Cinema Wang", "merchant"),
    Person("zhao_sports", "赵教练 Coach Zhao", "merchant"),
    Person("chen_kitchen", "陈师傅 Chef Chen", "merchant"),
]
USERS = [
    Person("xiaoming", "小明", "user"), Person("meimei", "美美", "user"), Person("lilei", "李雷", "user"),
    Person("hanmeimei", "韩梅梅", "user"), Person("zhangwei", "张伟", "user"), Person("wangfang", "王芳", "user"),
    Person("liuyang", "刘洋", "user"), Person("chenjing", "陈静", "user"), Person("amy_sh", "Amy", "user"),
    Person("ben_travels", "Ben", "user"), Person("chloe", "Chloe", "user"), Person("david_w", "David", "user"),
    Person("emma_eats", "Emma", "user"), Person("frank_li", "Frank Li", "user"), Person("grace_h", "Grace", "user"),
]
MODERATOR = Person("mod_demo", "审核员 Moderator", "moderator")

# name, category, address, owner index, metres north, metres east of People's Square
STORES = [
    ("人民广场咖啡 Square Coffee", "cafe", "人民大道 120 号", 0, 120, -80),
    ("爵士酒吧 Jazz Corner", "bar", "黄河路 65 号", 0, 420, 160),
    ("书香咖啡 Bookish Café", "cafe", "福州路 380 号", 0, 650, 520),
    ("大光明影城 Grand Cinema", "entertainment", "南京西路 216 号", 1, 380, -260),
    ("来福士广场 Raffles Mall", "shopping", "西藏中路 268 号", 1, 210, 560),
    ("国际饭店 Park Hotel", "hotel", "南京西路 170 号", 1, 360, -140),
    ("人民公园 People's Park", "outdoors", "南京西路 231 号", 2, 300, -420),
    ("动感健身 Fit Studio", "sports", "武胜路 88 号", 2, -260, -350),
    ("上海博物馆 Shanghai Museum", "education", "人民大道 201 号", 2, -210, 40),
    ("杏花楼 Xinghualou", "food", "福州路 343 号", 3, 690, 610),
    ("南京路小笼馆 Dumpling House", "food", "南京东路 99 号", 3, 520, 780),
    ("鲜果超市 Fresh Mart", "grocery", "云南中路 12 号", 3, -150, 700),
]

VISIT_TOPICS = ["coffee", "周末去哪儿", "打卡", "上海美食", "friends"]
CHECKIN_LINES = [
    "#人民广场# 今天阳光真好 ☀️", "又来打卡了 #咖啡续命#", "周末和朋友来这里 #周末去哪儿#",
    "Great spot for a break #shanghai", "排队半小时，值得！#美食#", "带爸妈来逛逛 #上海博物馆#",
    "Best xiaolongbao in town #foodie #上海美食#", "下班放松一下 #打卡#", None, None, None,
    "Rainy day, cozy corner #coffee", "跑完步来补充能量 #运动#",
]
POSTS_NOW = [
    ("xiaoming", "人民广场的鸽子今天特别多 #人民广场# @meimei 快来看"),
    ("meimei", "推荐一家新开的甜品店，芒果班戟绝了 #上海美食# #周末去哪儿#"),
    ("amy_sh", "First week in Shanghai, loving the energy around People's Square! #shanghai #人民广场#"),
    ("lilei", "博物馆的青铜器展太震撼了 #上海博物馆#"),
    ("ben_travels", "Tip: the museum is free but book ahead #travel #上海博物馆#"),
    ("emma_eats", "Dumplings at 8am, no regrets #foodie #上海美食#"),
    ("zhangwei", "今晚大光明有首映，有人一起吗？#电影#"),
    ("chenjing", "人民公园相亲角真是上海一景 #人民广场#"),
    ("grace_h", "Morning run around the park, 5k done #running #运动#"),
    ("wangfang", "来福士今天打折，冲！#购物#"),
]
STORE_NEWS = [
    (0, "新品上市：桂花拿铁，本周第二杯半价 #咖啡续命#"),
    (3, "本周五午夜场：经典老电影重映 #电影#"),
    (9, "秋季限定蟹粉小笼上市 #上海美食#"),
]
# Local topics (同城热门): a second city whose topics trend there and everywhere, but not in the
# nearby tab at People's Square. (username, text, metres north, metres east of the Forbidden City)
ELSEWHERE = (39.9163, 116.3972)
ELSEWHERE_POSTS = [
    ("lilei", "出差到北京，故宫下雪了 #北京初雪#", 0, 0),
    ("ben_travels", "Snow on the Forbidden City roofs, unreal #北京初雪# #travel", 150, -200),
    ("david_w", "Beijing in the snow, everyone is out with a camera #北京初雪#", -900, 400),
    ("frank_li", "胡同里的烤红薯，雪天必备 #北京美食# #北京初雪#", 1200, -1500),
    ("chloe", "Jianbing for breakfast before the museum #北京美食#", -400, 2500),
    ("liuyang", "雪后的景山公园，人不多 #北京初雪#", 800, 100),
]
COMMENTS = ["太棒了！", "同感 👍", "下次一起去", "Looks great!", "在哪里？", "收藏了", "Need to try this"]


@dataclass
class _City:
    """This run's people (fresh copies of the templates above, filled with ids and tokens)."""

    merchants: list[Person] = field(default_factory=lambda: [replace(p) for p in MERCHANTS])
    users: list[Person] = field(default_factory=lambda: [replace(p) for p in USERS])
    moderator: Person = field(default_factory=lambda: replace(MODERATOR))


class _Api:
    """The public routes, in-process: every rule and side effect of the real service applies."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, method: str, path: str, who: Person | None = None, body: Any = None,
                   ok: tuple[int, ...] = (200, 201, 204)) -> Any:
        headers = {"Authorization": f"Bearer {who.token}"} if who else {}
        resp = await self.client.request(method, path, json=body, headers=headers)
        if resp.status_code not in ok:
            raise SeedError(f"{method} {path} answered {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None


def _offset(north_m: float, east_m: float) -> tuple[float, float]:
    import math

    lat = CENTER[0] + north_m / 111_320.0
    lng = CENTER[1] + east_m / (111_320.0 * math.cos(math.radians(CENTER[0])))
    return round(lat, 6), round(lng, 6)


@contextlib.contextmanager
def _requests_unlogged() -> Iterator[None]:
    """No log line per request (the app's access log, the client's own) while the seed makes its
    hundreds: a person reads this run's output, and they would bury its summary."""
    loggers = [logging.getLogger(name) for name in ("solomo.access", "httpx2")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _has_users(services: Services) -> bool:
    return await services.db.users.find_one({}, {"_id": 1}) is not None


STALE_AFTER = timedelta(hours=6)
"""A demo city whose people last posted longer ago than this is woken up at the next start: its
hot topics (the last hours' posts) had run out, and its offers may have."""


async def seed_demo_city(services: Services, *, base_url: str | None = None,
                         stale_after: timedelta = STALE_AFTER) -> str:
    """Seed the city into an empty database; returns what to print (the accounts and the URL). A
    database that already has users is never seeded; if it holds the demo city gone quiet (nothing
    posted for ``stale_after``), the city gets a new day (:func:`_wake`): a newcomer's second
    ``make run`` finds it as alive as the first."""
    url = base_url or f"http://{services.settings.host}:{services.settings.port}/"
    if await _has_users(services):
        city = await _known_city(services)
        if city is None or not await _quiet_since(services, city, stale_after):
            return "the database already has users: nothing seeded"
        for person in city.merchants + city.users:  # signed in only to wake it (tokens are bounded)
            person.token = await services.accounts.issue_token(ObjectId(person.id))
        async with _in_process(services) as api:
            counts = await _wake(services, api, random.Random(), city)
        return (f"the demo city had gone quiet: {counts['posts']} new posts, {counts['likes']} likes, "
                f"{counts['offers']} new offers. Open {url}")
    async with _in_process(services) as api:
        city = _City()
        counts = await _seed(services, api, random.Random(20240601), city)
    return _summary(url, counts, city)


@contextlib.asynccontextmanager
async def _in_process(services: Services) -> AsyncIterator[_Api]:
    """The public routes on an in-process app, its requests unlogged."""
    import httpx2

    from solomo.app import create_app

    app = create_app(services.settings)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://seed.local", timeout=60) as client:
            with _requests_unlogged():
                yield _Api(client)


async def _known_city(services: Services) -> _City | None:
    """The demo city's people with their ids and fresh tokens, if this database holds it (every
    merchant and user of the seed, by username); None for any other database."""
    city = _City()
    people = city.merchants + city.users
    found = {u["username"]: u async for u in services.db.users.find(
        {"username": {"$in": [p.username for p in people]}, "status": "active"}, {"username": 1})}
    if len(found) != len(people):
        return None
    for person in people:
        person.id = str(found[person.username]["_id"])
    return city


async def _quiet_since(services: Services, city: _City, stale_after: timedelta) -> bool:
    """Whether none of the city's people posted within ``stale_after``."""
    authors = [ObjectId(p.id) for p in city.merchants + city.users]
    newest = await services.db.posts.find_one({"author_id": {"$in": authors}}, {"created_at": 1},
                                              sort=[("created_at", -1)])
    return newest is None or newest["created_at"] < datetime.now(UTC) - stale_after


async def _wake(services: Services, api: _Api, rng: random.Random, city: _City) -> dict[str, int]:
    """A new day in a seeded city: today's posts again (topics that make hot topics), reactions to
    them, and the first offers again when none of its stores has a live one. Check-ins are left to the
    people: the seed's would meet the travel and one-hour rules of wherever the history left them."""
    names = [name for name, *_ in STORES]
    owners = [ObjectId(p.id) for p in city.merchants]  # the demo merchants' own (a namesake is not)
    stores = {s["name"]: s async for s in services.db.stores.find({"name": {"$in": names},
                                                                    "owner_id": {"$in": owners}})}
    if len(stores) != len(names):
        return {"posts": 0, "likes": 0, "offers": 0}
    ordered = [{**stores[name], "id": str(stores[name]["_id"])} for name in names]
    posts = await _today_posts(api, rng, ordered, city)
    likes, _ = await _reactions(api, rng, posts, city, ok=(200, 201, 204, 403))
    from offers.offers import live_query

    live = {o["store_id"] async for o in services.db.offers.find(live_query(datetime.now(UTC)), {"store_id": 1})}
    offers = 0
    if not any(s["_id"] in live for s in stores.values()):
        offers = await _offers(api, ordered, city)
    return {"posts": len(posts), "likes": likes, "offers": offers}


async def _seed(services: Services, api: _Api, rng: random.Random, city: _City) -> dict[str, int]:
    counts: dict[str, int] = {}
    # accounts: users and merchants sign up; the moderator is made the way the CLI makes one
    for person in city.merchants + city.users:
        res = await api.call("POST", "/v1/auth/register", body={
            "username": person.username, "password": PASSWORD, "role": person.role,
            "display_name": person.display_name})
        person.id, person.token = res["user"]["id"], res["token"]
    moderator = city.moderator
    mod = await services.accounts.create_user(moderator.username, PASSWORD, "moderator", moderator.display_name)
    moderator.id, moderator.token = str(mod["_id"]), await services.accounts.issue_token(mod["_id"])

    stores = []
    for name, category, address, owner, north, east in STORES:
        lat, lng = _offset(north, east)
        store = await api.call("POST", "/v1/stores", city.merchants[owner], {
            "name": name, "lat": lat, "lng": lng, "category": category, "address": address,
            "checkin_radius_m": 150})
        stores.append(store)
    counts["stores"] = len(stores)

    counts["checkins"] = await _history(services, rng, stores, city)
    counts["checkins"] += await _three_months(services, rng, stores, city)
    counts["checkins"] += await _loyalty(services, api, stores, city)
    counts["follows"] = await _follows(api, rng, stores, city)
    posts = await _today(api, rng, stores, city)
    counts["photos"] = await _photo_posts(api, rng, stores, city)
    counts["posts"] = len(posts) + counts["checkins"]
    counts["likes"], counts["comments"] = await _reactions(api, rng, posts, city)
    counts["offers"] = await _offers(api, stores, city)
    counts["posts"] += await _elsewhere(api, city)
    counts["stores"] += await _search_demo(api, city)
    counts["blocks/mutes"] = await _shut_out(services, api, city)
    counts["notifications"] = await _inbox(services, api, rng, posts, city)
    counts["reposts"] = await _reposts(api, posts, city)
    counts["offers"] += await _profiles_and_past_offers(api, stores, city)
    counts["offers"] += await _audience_offers(api, stores, city)
    reported = posts[-1]["id"]
    await api.call("POST", f"/v1/posts/{reported}/reports", city.users[0], {"reason": "spam", "note": "广告？"})
    await api.call("POST", f"/v1/posts/{reported}/reports", city.users[3], {"reason": "spam"})
    return counts


def _recent_days(now: datetime) -> set[str]:
    """The UTC days of the check-ins seeded for the last few hours (loyalty, today's): the history
    leaves them free, so a user checks in at a store once a day at most, whatever the hour now."""
    return {(now - timedelta(hours=4)).strftime("%Y-%m-%d"), now.strftime("%Y-%m-%d")}


async def _history(services: Services, rng: random.Random, stores: list[dict[str, Any]], city: _City) -> int:
    """Three weeks of check-ins, written through the check-in rules with their real times."""
    from checkins.checkin import check_in

    now = datetime.now(UTC)
    plan: list[tuple[datetime, Person, dict[str, Any], str | None]] = []
    recent_days = _recent_days(now)  # left free: one visit per user, store and day
    regulars = {u.username: rng.sample(stores, 3) for u in city.users}
    for user in city.users:
        days = sorted(rng.sample(range(1, HISTORY_DAYS + 1), rng.randint(3, 7)), reverse=True)
        for day in days:
            # 09:00..21:59 in Shanghai (UTC+8) on that day
            local_hour = rng.randint(9, 21)
            at = (now - timedelta(days=day)).replace(hour=(local_hour - 8) % 24, minute=rng.randint(0, 59),
                                                     second=rng.randint(0, 59), microsecond=0)
            store = rng.choice(regulars[user.username]) if rng.random() < 0.7 else rng.choice(stores)
            text = rng.choice(CHECKIN_LINES)  # drawn either way: the city's later draws stay the same
            if at.strftime("%Y-%m-%d") not in recent_days:
                plan.append((at, user, store, text))
    plan.sort(key=lambda item: item[0])
    for at, user, store, text in plan:
        lat, lng = store["lat"] + rng.uniform(-0.0002, 0.0002), store["lng"] + rng.uniform(-0.0002, 0.0002)
        await check_in(services, user.principal(), store["id"], lat, lng, accuracy_m=15.0, text=text, now=at)
    return len(plan)


async def _three_months(services: Services, rng: random.Random, stores: list[dict[str, Any]], city: _City) -> int:
    """Ninety days of past visits so the merchants' insights look alive: each user has a few
    favourite stores and a habit (how often, at which hours), busier at weekends; loaded in bulk
    (:func:`checkins.bulkvisits.load_visits`: the documents a check-in writes, then the rollups).
    One visit per user, store and day at most, never on a day the three-week history used."""
    from bson import ObjectId

    from checkins.bulkvisits import load_visits
    from checkins.mayor import refresh_mayor

    now = datetime.now(UTC)
    recent_days = _recent_days(now)
    taken = {(c["user_id"], c["store_id"], c["day"]) async for c in services.db.checkins.find(
        {}, {"user_id": 1, "store_id": 1, "day": 1})}
    plan: dict[ObjectId, list[tuple[ObjectId, datetime, list[str]]]] = {}
    for user in city.users:
        uid = ObjectId(user.id)
        favourites = rng.sample(stores, 3)
        habit = rng.choice([(8, 10), (11, 14), (17, 21), (19, 23)])  # morning, lunch, after work, night owl
        for store in stores:
            rate = rng.uniform(0.2, 0.45) if store in favourites else 0.03
            for day in range(1, 91):
                at = now - timedelta(days=day)
                weekend = (at + timedelta(hours=8)).weekday() >= 5
                if rng.random() > rate * (1.6 if weekend else 1.0):
                    continue
                hour = rng.randint(*habit) if rng.random() < 0.7 else rng.randint(8, 22)
                local = at.replace(hour=(hour - 8) % 24, minute=rng.randint(0, 59), second=rng.randint(0, 59),
                                   microsecond=0)  # that Shanghai hour on the day (UTC+8)
                sid = ObjectId(store["id"])
                if ((uid, sid, local.strftime("%Y-%m-%d")) in taken or local >= now - timedelta(hours=12)
                        or local.strftime("%Y-%m-%d") in recent_days):
                    continue
                taken.add((uid, sid, local.strftime("%Y-%m-%d")))
                topics = [rng.choice(VISIT_TOPICS)] if rng.random() < 0.15 else []
                plan.setdefault(sid, []).append((uid, local, topics))
    loaded = 0
    for sid, visits in plan.items():
        doc = await services.db.stores.find_one({"_id": sid})
        if doc is not None:
            loaded += await load_visits(services, doc, visits)
            await refresh_mayor(services, sid, now)  # the 60-day standings now include these visits
    return loaded


async def _follows(api: _Api, rng: random.Random, stores: list[dict[str, Any]], city: _City) -> int:
    n = 0
    for user in city.users:
        for other in rng.sample([u for u in city.users if u is not user], rng.randint(3, 6)):
            await api.call("POST", f"/v1/users/{other.id}/follow", user)
            n += 1
        for store in rng.sample(stores, rng.randint(2, 5)):
            await api.call("POST", f"/v1/stores/{store['id']}/follow", user)
            n += 1
    # everyone follows the first store so its news and offers reach the whole demo
    for user in city.users:
        await api.call("POST", f"/v1/stores/{stores[0]['id']}/follow", user)
    for merchant in city.merchants:
        await api.call("POST", f"/v1/users/{city.users[0].id}/follow", merchant)
        n += 1
    return n


async def _today(api: _Api, rng: random.Random, stores: list[dict[str, Any]], city: _City) -> list[dict[str, Any]]:
    posts = []
    # two check-ins today, through the public route like a phone would
    for user, store in ((city.users[1], stores[0]), (city.users[8], stores[8])):
        res = await api.call("POST", "/v1/checkins", user, {
            "store_id": store["id"], "lat": store["lat"], "lng": store["lng"], "accuracy_m": 10,
            "text": "现在就在这里 #人民广场# 有人一起吗？"})
        posts.append(res["post"])
    return posts + await _today_posts(api, rng, stores, city)


async def _today_posts(api: _Api, rng: random.Random, stores: list[dict[str, Any]],
                       city: _City) -> list[dict[str, Any]]:
    """Today's posts of the people around the square and the stores' news."""
    by_name = {u.username: u for u in city.users}
    posts = []
    for username, text in POSTS_NOW:
        north, east = rng.uniform(-600, 600), rng.uniform(-600, 600)
        lat, lng = _offset(north, east)
        posts.append(await api.call("POST", "/v1/posts", by_name[username], {"text": text, "lat": lat, "lng": lng}))
    for index, text in STORE_NEWS:
        owner = city.merchants[STORES[index][3]]
        posts.append(await api.call("POST", "/v1/posts", owner, {"text": text, "store_id": stores[index]["id"]}))
    return posts


async def _reactions(api: _Api, rng: random.Random, posts: list[dict[str, Any]], city: _City,
                     ok: tuple[int, ...] = (200, 201, 204)) -> tuple[int, int]:
    """Likes and comments on ``posts`` by random people (``ok``: the answers taken as done; a city
    with its blocks in place also answers 403 ``blocked`` between the two who are shut out)."""
    likes = comments = 0
    for post in posts:
        for user in rng.sample(city.users, rng.randint(1, 8)):
            likes += _done(await api.call("POST", f"/v1/posts/{post['id']}/like", user, ok=ok))
    for post in rng.sample(posts, min(6, len(posts))):
        first = None
        for user in rng.sample(city.users, rng.randint(1, 3)):
            c = await api.call("POST", f"/v1/posts/{post['id']}/comments", user, {"text": rng.choice(COMMENTS)},
                               ok=ok)
            if not _done(c):
                continue
            first = first or c
            comments += 1
        author = next((u for u in city.users + city.merchants if u.id == post["author"]["id"]), None)
        if author is not None and first is not None:
            await api.call("POST", f"/v1/posts/{post['id']}/comments", author,
                           {"text": "谢谢！Thanks!", "reply_to": first["id"]}, ok=ok)
            comments += 1
    return likes, comments


def _done(answer: Any) -> bool:
    """Whether a call taken with a refusal among its ``ok`` answers did what it asked."""
    return not (isinstance(answer, dict) and "error" in answer)


async def _elsewhere(api: _Api, city: _City) -> int:
    """Posts in a second city (see :data:`ELSEWHERE_POSTS`): hot topics differ between the two."""
    import math

    by_name = {u.username: u for u in city.users}
    for username, text, north, east in ELSEWHERE_POSTS:
        lat = ELSEWHERE[0] + north / 111_320.0
        lng = ELSEWHERE[1] + east / (111_320.0 * math.cos(math.radians(ELSEWHERE[0])))
        await api.call("POST", "/v1/posts", by_name[username], {"text": text, "lat": lat, "lng": lng})
    return len(ELSEWHERE_POSTS)


async def _offers(api: _Api, stores: list[dict[str, Any]], city: _City) -> int:
    expires = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    specs = [(0, "桂花拿铁第二杯半价 Latte 2nd cup ½ price", "到店出示券码即可", 1500, 100),
             (9, "蟹粉小笼 8 折 20% off crab dumplings", "限堂食", 1000, None)]
    for index, title, description, radius, stock in specs:
        await api.call("POST", f"/v1/stores/{stores[index]['id']}/offers", city.merchants[STORES[index][3]], {
            "title": title, "description": description, "radius_m": radius, "expires_at": expires,
            "stock": stock})
    return len(specs)


# Loyalty points (issue 17): two partner stores of different merchants; this morning's check-ins
# there earn points (through the check-in rules, with their times: after the history, before today's
# check-ins); two people spend some at the counter.
PARTNERS = [(0, {"enabled": True, "checkin_points": 10, "redemption_points": 20}),
            (10, {"enabled": True, "checkin_points": 15, "redemption_points": 30})]


async def _loyalty(services: Services, api: _Api, stores: list[dict[str, Any]], city: _City) -> int:
    from checkins.checkin import check_in

    for index, settings in PARTNERS:
        await api.call("PUT", f"/v1/stores/{stores[index]['id']}/loyalty", city.merchants[STORES[index][3]], settings)
    first, second = (stores[index] for index, _ in PARTNERS)
    now = datetime.now(UTC).replace(microsecond=0)
    n = 0
    # not meimei nor lilei: they check in at these stores later today (_today, _photo_posts)
    for i, user in enumerate(city.users[3:11]):
        visits = [(first, now - timedelta(minutes=170 - i))]
        if i % 2 == 0:
            visits.append((second, now - timedelta(minutes=130 - i)))
        for store, at in visits:
            await check_in(services, user.principal(), store["id"], store["lat"], store["lng"], accuracy_m=15.0,
                           text="集点卡 +1 #积分#", now=at)
            n += 1
    for user, index, points in ((city.users[3], 0, 12), (city.users[5], 1, 8)):
        code = await api.call("POST", "/v1/me/points/spend-codes", user)
        store = stores[PARTNERS[index][0]]
        await api.call("POST", f"/v1/stores/{store['id']}/points/charge", city.merchants[STORES[PARTNERS[index][0]][3]],
                       {"code": code["code"], "points": points})
    return n


# Search (issue 16): a few more places whose names people look up by pinyin or initials
# (chuancai, wpj, yuyuan), and a topic family for the topic prefix search (#咖啡…).
SEARCH_STORES = [
    ("渝信川菜 Yuxin Sichuan", "food", "黄河路 123 号", 3, 460, 90),
    ("外婆家 Grandma's Kitchen", "food", "西藏中路 300 号", 3, 260, 640),
    ("豫园茶馆 Yuyuan Teahouse", "cafe", "福佑路 8 号", 0, -380, 820),
]
SEARCH_POSTS = [
    ("emma_eats", "Spicy boiled fish at 渝信川菜, worth the queue #川菜#"),
    ("lilei", "豫园茶馆的下午茶很安静，适合看书 #咖啡探店#"),
]


async def _search_demo(api: _Api, city: _City) -> int:
    """The search screen's demo data; returns the stores added. Stores and posts get their search
    keys where they are written; the topic counts follow from the posts' fan-out."""
    people = {p.username: p for p in city.merchants + city.users}
    for name, category, address, owner, north, east in SEARCH_STORES:
        lat, lng = _offset(north, east)
        await api.call("POST", "/v1/stores", city.merchants[owner], {
            "name": name, "lat": lat, "lng": lng, "category": category, "address": address})
    for username, text in SEARCH_POSTS:
        await api.call("POST", "/v1/posts", people[username], {"text": text})
    return len(SEARCH_STORES)


async def _shut_out(services: Services, api: _Api, city: _City) -> int:
    """The first user mutes one person and blocks another, so the me page's two lists are not empty.
    The block goes to someone with no follow either way: the demo's follow graph stays as seeded."""
    me = city.users[0]
    await api.call("POST", f"/v1/users/{city.users[-1].id}/mute", me)
    for other in reversed(city.users[1:-1]):
        ids = [ObjectId(me.id), ObjectId(other.id)]
        linked = await services.db.follows.find_one({"target_type": "user", "follower_id": {"$in": ids},
                                                     "target_id": {"$in": ids}}, {"_id": 1})
        if linked is None:
            await api.call("POST", f"/v1/users/{other.id}/block", me)
            return 2
    return 1
MENTION_LINES = ["@{name} 你也来看看！", "@{name} 下次一起去？", "@{name} look at this!"]
INBOX_READ_AFTER = 4
"""Each demo user has read all but their newest few notifications: the inbox shows both states."""


async def _inbox(services: Services, api: _Api, rng: random.Random, posts: list[dict[str, Any]],
                 city: _City) -> int:
    """Notifications arise from the seeded likes, comments, replies and follows (each went through
    the recorder); here a few comments mention friends, and everyone has read their older ones.
    Returns how many inbox entries the city holds. A friend is never one the user blocks or mutes,
    nor one who blocks them (that mention would be silenced), and comments on a post whose author
    has no block with them: which users those are depends on the day the city is seeded."""
    apart = {(str(d["blocker_id"]), str(d["blocked_id"])) async for d in services.db.blocks.find({})}
    apart |= {(str(d["muter_id"]), str(d["muted_id"])) async for d in services.db.mutes.find({})}

    def shut(a: str, b: str) -> bool:
        return (a, b) in apart or (b, a) in apart

    for user in city.users:
        friend = rng.choice([u for u in city.users if u is not user and not shut(u.id, user.id)])
        target = rng.choice([p for p in posts
                             if p["author"]["id"] != user.id and not shut(p["author"]["id"], friend.id)])
        await api.call("POST", f"/v1/posts/{target['id']}/comments", friend,
                       {"text": rng.choice(MENTION_LINES).format(name=user.username)})
    for person in city.users + city.merchants:
        page = await api.call("GET", f"/v1/notifications?limit={INBOX_READ_AFTER + 1}", person)
        if len(page["items"]) > INBOX_READ_AFTER:
            await api.call("POST", "/v1/notifications/read", person, {"up_to": page["items"][-1]["id"]})
    return await services.db.notifications.count_documents({})
# (reposter, whose post — an author's username, or the previous repost "^" —, own text): a chain
# of three on xiaoming's pigeons, and two single reposts
REPOSTS = [
    ("amy_sh", "xiaoming", "So many pigeons! Going there now #人民广场#"),
    ("meimei", "^", "哈哈 我也看到了"),
    ("lilei", "^", ""),
    ("ben_travels", "lilei", "Adding this to my list #travel"),
    ("hanmeimei", "lin_coffee", "桂花拿铁！周末约起来 @meimei"),
]


async def _reposts(api: _Api, posts: list[dict[str, Any]], city: _City) -> int:
    """A few reposts with comments, one a chain (a repost of a repost of a repost: Weibo's //@)."""
    people = {p.username: p for p in city.users + city.merchants}
    first_by: dict[str, dict[str, Any]] = {}
    for post in posts:
        first_by.setdefault(post["author"]["username"], post)
    previous: dict[str, Any] | None = None
    for reposter, of, text in REPOSTS:
        target = previous if of == "^" else first_by[of]
        assert target is not None
        previous = await api.call("POST", f"/v1/posts/{target['id']}/repost", people[reposter], {"text": text})
    return len(REPOSTS)


BIOS = {
    "xiaoming": "住在人民广场附近，爱喝咖啡，周末逛博物馆。",
    "amy_sh": "New in Shanghai. Coffee, museums and long walks.",
    "meimei": "甜品探店 🍰 只推荐真心喜欢的",
}


async def _profiles_and_past_offers(api: _Api, stores: list[dict[str, Any]], city: _City) -> int:
    """Issue 16: a few bios on profiles, and an offer the first store ended early, so the merchant's
    offer list shows statuses. Returns the offers added."""
    for person in city.users:
        if person.username in BIOS:
            await api.call("PATCH", "/v1/me", person, {"bio": BIOS[person.username]})
    expires = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    owner = city.merchants[STORES[0][3]]
    offer = await api.call("POST", f"/v1/stores/{stores[0]['id']}/offers", owner, {
        "title": "开业周：买咖啡送曲奇 Opening week: free cookie", "radius_m": 800, "expires_at": expires, "stock": 50})
    await api.call("POST", f"/v1/offers/{offer['id']}/end", owner)
    return 1


async def _audience_offers(api: _Api, stores: list[dict[str, Any]], city: _City) -> int:
    """Issue 17: an offer for the jazz bar's visitors of the last 30 days and one for the bookish
    café's regulars (2 check-in days in 90), so the console lists audiences. Returns the offers added."""
    expires = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    specs = [(1, "老顾客专享：鸡尾酒买一送一 Visitors: cocktail 2-for-1",
              {"audience": "visitors", "audience_days": 30}),
             (2, "常客福利：手冲咖啡免费升级 Regulars: free pour-over upgrade",
              {"audience": "regulars", "min_visits": 2})]
    for index, title, audience in specs:
        await api.call("POST", f"/v1/stores/{stores[index]['id']}/offers", city.merchants[STORES[index][3]], {
            "title": title, "radius_m": 1500, "expires_at": expires, "stock": 30, **audience})
    return len(specs)


def _summary(url: str, counts: dict[str, int], city: _City) -> str:
    lines = [
        "Seeded the demo city around People's Square, Shanghai (31.2304 N, 121.4737 E): "
        + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".",
        f"Open {url} and log in with any of these (password for all: {PASSWORD}):",
        "  users:     " + ", ".join(u.username for u in city.users),
        "  merchants: " + ", ".join(m.username for m in city.merchants),
        f"  moderator: {city.moderator.username}",
        "Tip: pick 'People's Square' in the location picker (the pin at the top) to be in the middle of it.",
    ]
    return "\n".join(lines)


# --- photos (issue 15) ----------------------------------------------------------------------------
# Pictures drawn with Pillow here and now (nothing downloaded), uploaded through POST /v1/media
# like a phone's, then posted: a sunset nine-grid, latte art, a check-in with its dumplings.


def _picture(kind: str, seed: int, size: tuple[int, int] = (960, 720)) -> bytes:
    import io

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    w, hgt = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    if kind == "sunset":  # sky gradient, a sun, the skyline in silhouette
        top, bottom = (40 + rng.randint(0, 40), 30, 90 + rng.randint(0, 60)), (250, 140 + rng.randint(0, 60), 60)
        for y in range(hgt):
            f = y / hgt
            draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * f) for a, b in zip(top, bottom, strict=True)))
        cx, r = rng.randint(w // 4, 3 * w // 4), rng.randint(50, 90)
        draw.ellipse([cx - r, hgt * 0.62 - r, cx + r, hgt * 0.62 + r], fill=(255, 210, 120))
        x = 0
        while x < w:
            bw, bh = rng.randint(30, 90), rng.randint(hgt // 6, hgt // 2)
            draw.rectangle([x, hgt - bh, x + bw, hgt], fill=(25, 20, 35))
            if rng.random() < 0.3:  # a tower
                draw.rectangle([x + bw // 2 - 4, hgt - bh - 80, x + bw // 2 + 4, hgt - bh], fill=(25, 20, 35))
            x += bw + rng.randint(0, 8)
    elif kind == "latte":  # a cup from above, a heart in the foam, on a wooden table
        draw.rectangle([0, 0, w, hgt], fill=(120, 80, 50))
        for y in range(0, hgt, 24):
            draw.line([(0, y), (w, y + rng.randint(-6, 6))], fill=(105, 68, 42), width=3)
        cx, cy = w // 2, hgt // 2
        draw.ellipse([cx - 250, cy - 250, cx + 250, cy + 250], fill=(245, 245, 240))
        draw.ellipse([cx - 200, cy - 200, cx + 200, cy + 200], fill=(150, 95, 50))
        draw.ellipse([cx - 95, cy - 80, cx + 5, cy + 20], fill=(240, 225, 200))
        draw.ellipse([cx - 5, cy - 80, cx + 95, cy + 20], fill=(240, 225, 200))
        draw.polygon([(cx - 92, cy - 15), (cx + 92, cy - 15), (cx, cy + 110)], fill=(240, 225, 200))
    else:  # dumplings in a bamboo steamer
        draw.rectangle([0, 0, w, hgt], fill=(60, 40, 30))
        cx, cy = w // 2, hgt // 2
        draw.ellipse([cx - 320, cy - 320, cx + 320, cy + 320], fill=(200, 160, 90))
        draw.ellipse([cx - 290, cy - 290, cx + 290, cy + 290], fill=(230, 215, 170))
        for i in range(7):
            px, py = (cx, cy) if i == 0 else (cx + int(170 * _cos(i)), cy + int(170 * _sin(i)))
            draw.ellipse([px - 75, py - 70, px + 75, py + 70], fill=(250, 248, 240), outline=(215, 205, 185), width=4)
            draw.ellipse([px - 12, py - 12, px + 12, py + 12], fill=(235, 225, 205))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _cos(i: int) -> float:
    import math

    return math.cos(i * math.pi / 3)


def _sin(i: int) -> float:
    import math

    return math.sin(i * math.pi / 3)


async def _upload_photos(api: _Api, who: Person, kind: str, n: int, seed: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = await api.client.post("/v1/media", headers={"Authorization": f"Bearer {who.token}"},
                                     files={"file": (f"{kind}{i}.jpg", _picture(kind, seed + i), "image/jpeg")})
        if resp.status_code != 201:
            raise SeedError(f"POST /v1/media answered {resp.status_code}: {resp.text[:300]}")
        ids.append(resp.json()["id"])
    return ids


async def _photo_posts(api: _Api, rng: random.Random, stores: list[dict[str, Any]], city: _City) -> int:
    """Posts and a check-in with photos; returns how many photos."""
    users = {u.username: u for u in city.users}
    made = 0
    sunset = await _upload_photos(api, users["ben_travels"], "sunset", 9, 100)
    lat, lng = _offset(300, 900)
    await api.call("POST", "/v1/posts", users["ben_travels"], {
        "text": "外滩日落九宫格 Nine sunsets from the Bund #上海# #sunset", "lat": lat, "lng": lng,
        "media_ids": sunset})
    latte = await _upload_photos(api, users["meimei"], "latte", 2, 200)
    await api.call("POST", "/v1/posts", users["meimei"], {
        "text": "今天的拉花是爱心 ❤️ #咖啡续命#", "store_id": stores[0]["id"], "media_ids": latte})
    dumplings = await _upload_photos(api, users["lilei"], "dumplings", 1, 300)
    store = stores[10]
    await api.call("POST", "/v1/checkins", users["lilei"], {
        "store_id": store["id"], "lat": store["lat"], "lng": store["lng"], "accuracy_m": 10,
        "text": "刚出笼的小笼包 #上海美食#", "media_ids": dumplings})
    made = len(sunset) + len(latte) + len(dumplings)
    for user in rng.sample(city.users, 5):  # a few likes, so the photos look seen
        posts = await api.call("GET", f"/v1/users/{users['ben_travels'].id}/posts", user)
        await api.call("POST", f"/v1/posts/{posts['items'][0]['id']}/like", user)
    return made
