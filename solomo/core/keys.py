"""Every Redis key and channel name SoLoMo uses, in one place.

Modules import the names and builders from here and never spell a key themselves, so a change of
key layout (hash tags for Redis Cluster, say) is made once. A Lua script gets its keys in
``KEYS`` from these builders.

Data keys live in the data Redis (``SOLOMO_REDIS_URL``); the Celery broker is separate.
"""

from __future__ import annotations

from bson import ObjectId

Id = ObjectId | str

# --- feeds (feed/) -------------------------------------------------------------------------------

HOME_PREFIX = "feed:home:"
"""``feed:home:{user id}``: a reader's home timeline (zset, score = created_ms, member = post id)."""
PULL_CACHE = "feed:pull"
"""Recent posts of pull authors (too many followers to push to), merged into home feeds at read."""


def home_key(user_id: Id) -> str:
    return f"{HOME_PREFIX}{user_id}"


def home_rebuild_lock(user_id: Id) -> str:
    return f"feed:rebuild:{user_id}"


def cell_key(cell: str) -> str:
    """``feed:cell:{geohash}``: the local timeline of one geo cell."""
    return f"feed:cell:{cell}"


def cell_rebuild_lock(cell: str) -> str:
    return f"feed:cell:rebuild:{cell}"


def feed_new_sent(post_id: Id) -> str:
    """The users already told ``feed.new`` about a post (a resumed fan-out does not tell them twice)."""
    return f"feed:new:{post_id}"


def topic_key(topic: str) -> str:
    """``topic:{normalized topic}``: a topic's timeline."""
    return f"topic:{topic}"


# --- hot topics (feed/trends.py) -----------------------------------------------------------------

TREND_HOT = "trend:hot"
TREND_HOT_LOCK = "trend:hot:lock"


def trend_posts(bucket: int) -> str:
    """Hash topic → posts in one hour (expires)."""
    return f"trend:{bucket}:n"


def trend_authors(bucket: int, topic: str) -> str:
    """Hash author → posts of one topic in one hour (expires)."""
    return f"trend:{bucket}:a:{topic}"


def trend_top(bucket: int) -> str:
    """Zset topic → unique authors in one hour, only the top few (capped, expires)."""
    return f"trend:{bucket}:top"


def trend_display(bucket: int) -> str:
    """Hash topic → its display form, for the topics of one hour's top (expires)."""
    return f"trend:{bucket}:d"


def trend_seen(post_id: Id) -> str:
    return f"trend:seen:{post_id}"


# --- live positions (geo/) ---------------------------------------------------------------------

POSITIONS = "pos:users"
"""GEO set of users' live positions (used for offer targeting only; never shown)."""
POSITIONS_SEEN = "pos:seen"
"""zset user → last position update (ms), for expiry."""

# --- offers (offers/) ----------------------------------------------------------------------------

LIVE_OFFERS = "offers:live"
LIVE_OFFERS_META = "offers:live:meta"
LIVE_OFFERS_VERSION = "offers:live:version"
"""A counter bumped on every change of the live index: processes' per-cell caches check it."""


def offers_judged(user_id: Id) -> str:
    """Offers already judged for a user on arrival (sent, not followed, not live): a set with a
    short TTL, so each location message asks MongoDB only about offers new to this user."""
    return f"offers:judged:{user_id}"


def offer_delivered(offer_id: Id) -> str:
    """The set of users an offer was delivered to (nobody gets it twice)."""
    return f"offer:{offer_id}:delivered"


# --- real time (solomo/realtime, solomo/core/events.py, presence.py, control.py) -------------------

EVENTS_CHANNEL = "rt:events"
CONTROL_CHANNEL = "rt:control"
ONLINE = "rt:online"
"""Users with an open socket in any API process."""
PROCS = "rt:procs"
"""zset API process id → last heartbeat (ms)."""


def proc_users(pid: str) -> str:
    return f"rt:proc:{pid}:users"


def user_sockets(user_id: Id) -> str:
    """zset ``{process id}|{socket id}`` → opened at (ms): a user's open sockets in every API
    process, so the oldest beyond the cap is closed (``solomo/realtime/slots.py``)."""
    return f"rt:socks:{user_id}"


def event_history(user_id: Id) -> str:
    """``events:{user id}``: a user's bounded event stream (stream id = event id)."""
    return f"events:{user_id}"


def mentions_sent(post_id: Id) -> str:
    """``post:{post id}:mentioned``: the users already notified of their mention in a post (the
    dedupe set of ``publish_each_event``, with a TTL), so a re-run of its fan-out tells nobody twice."""
    return f"post:{post_id}:mentioned"


# --- rate limits and moderation ------------------------------------------------------------------

RATE_LIMIT_PREFIX = "rl"
"""Prefix of the ``limits`` library's moving windows (``solomo/core/ratelimit.py``)."""
WORDS_VERSION = "words:version"
"""The word lists' version, so every process reloads its matcher after a moderator's change."""

# --- accounts (solomo/accounts.py TokenCache) ---------------------------------------------------

TOKEN_PREFIX = "auth:tok:"
TOKEN_USER_PREFIX = "auth:user:"
TOKEN_GENERATION = "auth:gen"
