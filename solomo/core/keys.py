"""Every Redis key and channel name SoLoMo uses, in one place.

Modules import the names and builders from here and never spell a key themselves, so a change of
key layout (hash tags for Redis Cluster, say) is made once. A Lua script gets its keys in
``KEYS`` from these builders.

Data keys live in the data Redis (``SOLOMO_REDIS_URL``, one server or a Redis Cluster); the
Celery broker is separate.

The layout is cluster-safe (docs/scaling.md, "Key layout"): keys that one Lua script or one
transaction touches together share a hash tag ``{…}``, so they live in one slot. Per-reader keys
(home feed, event history, online set, dedupe sets of per-reader events) carry the reader's
*bucket* tag ``{b<n>}``, n = :func:`bucket_of` (a stable hash of the user id modulo
:data:`BUCKETS`): a fan-out chunk becomes one script call per bucket, pipelined, and the buckets
spread over the cluster's masters. Shared structures have one tag each (``{auth}``, ``{pos}``,
``{offers}``, ``{trend}``). Geo cells and topics are one key each. Changing :data:`BUCKETS` moves
every per-reader key: feeds rebuild from MongoDB, like after any Redis loss.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

from bson import ObjectId

Id = ObjectId | str

BUCKETS = 64
"""Per-reader keys are spread over this many hash tags (more buckets: more masters can share the
per-reader keys, but more script calls per fan-out chunk)."""


def bucket_of(user_id: Id) -> int:
    """The user's bucket: stable across processes and releases (CRC-32 of the id's hex text)."""
    return zlib.crc32(str(user_id).encode()) % BUCKETS


def bucket_tag(bucket: int) -> str:
    return f"{{b{bucket}}}"


def by_bucket(user_ids: Iterable[Id]) -> dict[int, list[str]]:
    """User ids (as text, order kept) grouped by bucket."""
    out: dict[int, list[str]] = {}
    for uid in user_ids:
        text = str(uid)
        out.setdefault(zlib.crc32(text.encode()) % BUCKETS, []).append(text)  # bucket_of, inlined (fan-out loop)
    return out


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes for ``key``: the text inside its first non-empty ``{…}``, else the
    whole key (keys with the same hash tag are in one slot)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def by_hash_tag(keys: Iterable[str]) -> list[list[str]]:
    """Keys grouped so that each group can go to one script call (order of first appearance)."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(hash_tag(key), []).append(key)
    return list(groups.values())

# --- feeds (feed/) -------------------------------------------------------------------------------

PULL_CACHE = "feed:pull"
"""A JSON copy of the pull users and stores (too many followers to push to: their posts are merged
into home feeds at read), kept 30 s and dropped when one is marked (``feed/home.py``)."""


def home_key(user_id: Id) -> str:
    """``feed:home:{b<n>}:<user id>``: a reader's home timeline (zset, score = created_ms, member =
    post id)."""
    return home_key_in(bucket_of(user_id), user_id)


def home_key_in(bucket: int, user_id: Id) -> str:
    """:func:`home_key` when the bucket is known already (the fan-out groups readers by bucket)."""
    return f"feed:home:{{b{bucket}}}:{user_id}"


def home_rebuild_lock(user_id: Id) -> str:
    return f"feed:rebuild:{user_id}"


def fanout_fence(bucket: int) -> str:
    """A counter in the bucket's slot that the fan-out increments and waits to see on a replica
    before it checkpoints (:mod:`solomo.core.replicafence`; Redis Cluster only)."""
    return f"feed:fence:{bucket_tag(bucket)}"


def feed_new_sent(post_id: Id, bucket: int) -> str:
    """The users of one bucket already told ``feed.new`` about a post (a resumed fan-out does not
    tell them twice); in the bucket's slot, beside their event histories."""
    return f"feed:new:{bucket_tag(bucket)}:{post_id}"


def notification_sent(entry_id: Id, version: int, bucket: int) -> str:
    """The recipient of an inbox entry, once told of this version of it (its ``updated_ms``): a task
    re-run after a crash between the announcement and its mark does not tell them twice; in the
    recipient's bucket's slot, beside their event history."""
    return f"notif:sent:{bucket_tag(bucket)}:{entry_id}:{version}"


def topic_key(topic: str) -> str:
    """``topic:{normalized topic}``: a topic's timeline."""
    return f"topic:{topic}"


# --- hot topics (feed/trends.py) -----------------------------------------------------------------

# One tag: a post's counting script touches the hour's hashes, the topic's author hash and the seen
# guard together. (``hour`` is an hour number, not a reader bucket.)
TREND_HOT = "{trend}:hot"
TREND_HOT_LOCK = "{trend}:hot:lock"


def trend_posts(hour: int) -> str:
    """Hash topic → posts in one hour (expires)."""
    return f"{{trend}}:{hour}:n"


def trend_authors(hour: int, topic: str) -> str:
    """Hash author → posts of one topic in one hour (expires)."""
    return f"{{trend}}:{hour}:a:{topic}"


def trend_top(hour: int) -> str:
    """Zset topic → unique authors in one hour, only the top few (capped, expires)."""
    return f"{{trend}}:{hour}:top"


def trend_display(hour: int) -> str:
    """Hash topic → its display form, for the topics of one hour's top (expires)."""
    return f"{{trend}}:{hour}:d"


def trend_seen(post_id: Id) -> str:
    return f"{{trend}}:seen:{post_id}"


# --- live positions (geo/) ---------------------------------------------------------------------

POSITIONS = "{pos}:users"
"""GEO set of users' live positions (used for offer targeting only; never shown)."""
POSITIONS_SEEN = "{pos}:seen"
"""zset user → last position update (Unix seconds), for expiry."""

# --- offers (offers/) ----------------------------------------------------------------------------

LIVE_OFFERS = "{offers}:live"
LIVE_OFFERS_META = "{offers}:live:meta"
"""hash offer → ``"{radius_m}:{expires_ms}"``."""
LIVE_OFFERS_FOLLOWERS = "{offers}:live:followers"
"""hash offer → the id of the store whose followers are its audience (offers to another audience
have no entry): a location message judges who does not follow it without reading the offer. A hash
of its own, so code that reads the meta above reads it as it always did (a rollback, a mixed deploy)."""
LIVE_OFFERS_VERSION = "{offers}:live:version"
"""A counter bumped on every change of the live index: processes' per-cell caches check it."""


def offers_judged(user_id: Id) -> str:
    """Offers already judged for a user on arrival (sent, not followed, not live): a set with a
    short TTL, so each location message asks MongoDB only about offers new to this user."""
    return f"offers:judged:{user_id}"


def offer_delivered(offer_id: Id, bucket: int) -> str:
    """The users of one bucket an offer was delivered to (nobody gets it twice); in the bucket's
    slot, beside their event histories."""
    return f"offer:{bucket_tag(bucket)}:{offer_id}:delivered"


# --- real time (solomo/realtime, solomo/core/events.py, presence.py, control.py) -------------------

EVENTS_CHANNEL = "rt:events"
CONTROL_CHANNEL = "rt:control"
PROCS = "rt:procs"
"""zset API process id → last heartbeat (ms)."""


def online_key(bucket: int) -> str:
    """``rt:online:{b<n>}``: the users of one bucket with an open socket in any API process."""
    return f"rt:online:{bucket_tag(bucket)}"


def online_key_of(user_id: Id) -> str:
    return online_key(bucket_of(user_id))


def proc_users(pid: str, bucket: int) -> str:
    """The users of one bucket with a socket in one API process."""
    return f"rt:proc:{bucket_tag(bucket)}:{pid}"


def user_sockets(user_id: Id) -> str:
    """zset ``{process id}|{socket id}`` → opened at (ms): a user's open sockets in every API
    process, so the oldest beyond the cap is closed (``solomo/realtime/slots.py``)."""
    return f"rt:socks:{user_id}"


def event_history(user_id: Id) -> str:
    """``events:{b<n>}:<user id>``: a user's bounded event stream (stream id = event id)."""
    return f"events:{bucket_tag(bucket_of(user_id))}:{user_id}"


# --- rate limits and moderation ------------------------------------------------------------------

RATE_LIMIT_PREFIX = "rl"
"""Prefix of the rate limits' moving windows (``solomo/core/ratelimit.py``)."""


def rate_window(action: str, who: str, period: str) -> str:
    """``rl:{<action>/<who>}/<period>``: one moving window of a rate limit (list of hit times,
    newest first; ``period`` such as ``30/1/minute``). One tag per action and caller: every
    window of an action is checked and counted by one script."""
    return f"{RATE_LIMIT_PREFIX}:{{{action}/{who}}}/{period}"


WORDS_VERSION = "words:version"
"""The word lists' version, so every process reloads its matcher after a moderator's change."""

# --- accounts (solomo/accounts.py TokenCache) ---------------------------------------------------

# One tag: forgetting a user's tokens touches their index and every cached token in one script.
TOKEN_PREFIX = "{auth}:tok:"
TOKEN_USER_PREFIX = "{auth}:user:"
TOKEN_GENERATION = "{auth}:gen"

# --- stores near a point (checkins/geoindex.py) --------------------------------------------------

# One tag: a store's members in the all-stores and per-category indexes are added together, and the
# markers vanish with the data they vouch for (one slot, one node).
STORES_GEO_READY = "{storegeo}:ready"
"""Set once the index holds every store of MongoDB; missing (Redis lost it) → reads use MongoDB."""
STORES_GEO_FRESH = "{storegeo}:fresh"
"""Expires after a while: the next read re-adds every store (repairs a partial loss), still served."""
STORES_GEO_LOCK = "{storegeo}:lock"
"""One rebuild at a time (expires if its process dies)."""


def stores_geo(category: str | None) -> str:
    """The GEO set of every store, or of one category's stores; members carry their exact position."""
    return "{storegeo}:all" if category is None else f"{{storegeo}}:cat:{category}"


# --- rendered stores (checkins/storeviews.py) -------------------------------------------------------

STORE_BUCKETS = 16
"""Cached stores are spread over this many hash tags ``{s<n>}``, as posts are over ``{p<n>}``."""


def store_view_key(store_id: Id) -> str:
    """``sc:{s<n>}:<store id>``: the store's cached view (JSON, see :mod:`checkins.storeviews`)."""
    return f"sc:{{s{zlib.crc32(str(store_id).encode()) % STORE_BUCKETS}}}:{store_id}"


def store_gen_key(store_id: Id) -> str:
    """``scg:{s<n>}:<store id>``: the store's cache generation, bumped by every change to its view."""
    return f"scg:{{s{zlib.crc32(str(store_id).encode()) % STORE_BUCKETS}}}:{store_id}"


# --- rendered posts and viewers' likes (feed/postcache.py, feed/likedset.py) -----------------------

POST_BUCKETS = 16
"""Cached posts are spread over this many hash tags ``{p<n>}``: a page's views are one ``MGET`` on
one Redis, one per tag on a cluster (a post's view and generation keys share its tag)."""


def post_bucket(post_id: Id) -> int:
    return zlib.crc32(str(post_id).encode()) % POST_BUCKETS


def post_view_key(post_id: Id) -> str:
    """``pc:{p<n>}:<post id>``: the post's cached view (JSON, see :mod:`feed.postcache`)."""
    return f"pc:{{p{post_bucket(post_id)}}}:{post_id}"


def post_gen_key(post_id: Id) -> str:
    """``pcg:{p<n>}:<post id>``: the post's cache generation, bumped by every change, so that a fill
    that read MongoDB before the change is refused."""
    return f"pcg:{{p{post_bucket(post_id)}}}:{post_id}"


def liked_key(user_id: Id) -> str:
    """``liked:{b<n>}:<user id>``: the post ids a user has liked (a set with a state marker member,
    see :mod:`feed.likedset`), in the reader's bucket slot beside their home feed."""
    return f"liked:{bucket_tag(bucket_of(user_id))}:{user_id}"


VIEWS_EPOCH = "views:epoch"
"""A random value made by the first reader that finds it missing: the per-process memos of cached
views (:mod:`solomo.core.viewcache`) hold only what was read under the epoch a page reads, so a
Redis that lost its data (a flush, a restart without persistence) gets a new one and every memo
starts over."""


SUMMARIES_GEN = "summaries:gen"
"""A new random value when an author's or store's name changes: every process then drops its summary
cache (random, not a count: a count restarts after a loss of Redis's data, to values processes hold)."""


# --- store search key flags (search/keyflags.py) --------------------------------------------------


def store_key_flag(key: str) -> str:
    """``skf:<search key>``: ``1`` when a store may hold the key, ``0`` when none did (expires)."""
    return f"skf:{key}"


# --- post search listings (search/listings.py) ----------------------------------------------------

SEARCH_BUCKETS = 16
"""Post search listings are spread over this many hash tags ``{s<n>}``: the fan-out writes a post's
keys with one script call per tag (a post has up to hundreds of keys), a search reads its two or
three keys from at most as many tags."""


STORES_SEARCH_GEN = "search:stores:gen"
"""Moves at every change a store search could see (search/tiersets.py): every tier set is stale."""


def store_tier_set(digest: str) -> str:
    """``ss:{<digest>}``: the GEO set of the stores matching one store-search tier's filter
    (:mod:`search.tiersets`); its scratch copies while built carry the same tag."""
    return f"ss:{{{digest}}}"


def search_listing_key(key: str) -> str:
    """``sp:{s<n>}:<search key>``: the newest posts holding one search key (a timeline, see
    :mod:`search.listings`)."""
    return f"sp:{{s{zlib.crc32(key.encode()) % SEARCH_BUCKETS}}}:{key}"


# --- local feed grid cells (feed/localcells.py) --------------------------------------------------


def local_cell_key(cell: str) -> str:
    """``feed:local:<level>:<col>:<row>``: one grid cell's local timeline (zset, score = created_ms,
    member = ``<post id>|<public lat>|<public lng>``), capped. No hash tag: every cell is its own
    slot, read in one pipeline."""
    return f"feed:local:{cell}"


def local_cell_gen(cell_key: str) -> str:
    """``{feed:local:<level>:<col>:<row>}:gen``: the generation of the cell ``cell_key`` (a random
    value set anew after every change of the cell, :mod:`feed.localcells`); its hash tag is the
    cell's key, so it lives in the cell's slot."""
    return "{" + cell_key + "}:gen"


def local_cell_rebuild_lock(cell: str) -> str:
    """Held while a rebuild of the cell is queued (expires if the task is lost)."""
    return f"feed:local:rebuild:{cell}"


# --- voucher claim gate (offers/gate.py) ---------------------------------------------------------
# One hash tag per offer ({o:<offer id>}): the gate script touches all of one offer's keys at once,
# and the offers of a flash sale spread over the cluster's masters.


def claim_gate(offer_id: Id) -> str:
    """Hash ``stock``, ``exp`` (expiry, ms), ``closed`` (an error code once the offer ended or sold
    out for good): the claim gate of one offer, built from MongoDB."""
    return f"claim:{{o:{offer_id}}}:gate"


def claim_holders(offer_id: Id) -> str:
    """Set of the users whose voucher for the offer is committed in MongoDB."""
    return f"claim:{{o:{offer_id}}}:holders"


def claim_pending(offer_id: Id) -> str:
    """Zset user → reserved at (ms): claims let through the gate whose MongoDB write is in flight."""
    return f"claim:{{o:{offer_id}}}:pending"


def claim_holders_build(offer_id: Id, nonce: str) -> str:
    """A holders set being filled from MongoDB by one rebuild, renamed into place by the gate script."""
    return f"claim:{{o:{offer_id}}}:holders:build:{nonce}"


# --- local hot topics (feed/localtrends.py) ------------------------------------------------------
# Counting: one hash tag per grid level and hour ({lt:<level>:<hour>}), so that the script counting
# a post can see whether its author already counts for the topic in another area of that level
# (each author counts in one area only, whatever union of areas a ranking merges). The tags rotate
# every hour over the cluster's slots. Each area's served ranking has a tag of its own
# ({lth:<area>}). ``area`` is a geo/cells grid cell name ``<level>:<col>:<row>``.


def local_trend_tag(level: int, hour: int) -> str:
    return f"{{lt:{level}:{hour}}}"


def local_trend_seen(level: int, hour: int, post_id: Id) -> str:
    """Set while the post is counted at this level: a retried fan-out counts it once."""
    return f"{local_trend_tag(level, hour)}:seen:{post_id}"


def local_trend_authors(level: int, hour: int, topic: str) -> str:
    """Hash of one topic's authors at a level and hour: ``<author>`` → the area they count in,
    ``<author>|<area>`` → their posts there (expires)."""
    return f"{local_trend_tag(level, hour)}:a:{topic}"


def local_trend_posts(level: int, hour: int, area: str) -> str:
    """Hash topic → posts in one area and hour (expires)."""
    return f"{local_trend_tag(level, hour)}:n:{area}"


def local_trend_unique(level: int, hour: int, area: str) -> str:
    """Hash topic → authors counted in one area and hour (exact; expires)."""
    return f"{local_trend_tag(level, hour)}:u:{area}"


def local_trend_top(level: int, hour: int, area: str) -> str:
    """Zset topic → authors counted in one area and hour, the top few only (capped, expires)."""
    return f"{local_trend_tag(level, hour)}:top:{area}"


def local_trend_display(level: int, hour: int, area: str) -> str:
    """Hash topic → display form in one area and hour (expires)."""
    return f"{local_trend_tag(level, hour)}:d:{area}"


def local_trend_ranking(area: str) -> str:
    """The area's served ranking (JSON: each candidate topic's authors per hour; expires)."""
    return f"{{lth:{area}}}:hot"


def local_trend_ranking_lock(area: str) -> str:
    """Held by the one request recomputing the area's ranking (expires)."""
    return f"{{lth:{area}}}:hot:lock"


def local_trend_near(areas: Iterable[str]) -> str:
    """A merged ranking of one set of areas (JSON, a few seconds): requests whose circles reach the
    same areas share it. Named by a digest of the area names (client input: it expires)."""
    digest = hashlib.sha1("|".join(sorted(areas)).encode()).hexdigest()[:20]
    return f"lt:near:{digest}"


# --- blocks and mutes (feed/blocks.py) -----------------------------------------------------------


def shut_out_key(user_id: Id) -> str:
    """``shut:{b<n>}:<user id>``: the authors a viewer must not see in feeds (blocked either way or
    muted), a set of id hexes with a state member (see :mod:`feed.blocks`), in the reader's slot."""
    return f"shut:{bucket_tag(bucket_of(user_id))}:{user_id}"


# --- offer audiences: the nearby cap (offers/nearbycap.py) ---------------------------------------


def nearby_offers_day(user_id: Id, day: str) -> str:
    """``offers:nearby:{b<n>}:<user id>:<day>``: the ids of the ``nearby`` offers from stores the user
    does not follow that reached them on one store-local day (at most 3). In the user's bucket slot,
    beside the offers' dedupe sets of that bucket, so one script checks both."""
    return f"offers:nearby:{bucket_tag(bucket_of(user_id))}:{user_id}:{day}"
