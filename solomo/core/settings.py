"""Settings read from the environment (prefix ``SOLOMO_``), with documented defaults.

Each of ``SOLOMO_MONGO_URL``, ``SOLOMO_REDIS_URL`` and ``SOLOMO_BROKER_URL`` left unset means the
embedded ``mongod`` / data ``redis-server`` / broker ``redis-server`` on the loopback ports below
(see :mod:`solomo.embedded`); ``solomo dev`` starts whichever of them is not external.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOLOMO_", extra="ignore")

    # --- servers -----------------------------------------------------------------
    mongo_url: str | None = Field(None, description="External MongoDB URL; unset = embedded mongod")
    redis_url: str | None = Field(None, description="External Redis URL (data); unset = embedded redis-server")
    redis_cluster: bool = Field(False, description="SOLOMO_REDIS_CLUSTER=true: SOLOMO_REDIS_URL names any node "
                                "of a Redis Cluster")
    broker_url: str | None = Field(None, description="Celery broker: its own non-cluster Redis, never the data "
                                   "Redis; unset = embedded redis-server on embedded_broker_port")
    broker_visibility_timeout_s: int = Field(300, ge=1, description="A task taken by a worker that died "
                                             "(acks late) goes back to the queue this long after it was delivered; "
                                             "longer than any task runs, else a running task is delivered twice")
    mongo_db: str = "solomo"
    data_dir: Path = PROJECT_ROOT / ".solomo"
    embedded_mongo_port: int = 27117
    embedded_redis_port: int = 6479
    embedded_broker_port: int = 6480

    # --- HTTP --------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024
    secret_key: str = Field("", description="Signs cursors: required (the API and the worker refuse to start "
                            "without one); `solomo dev` generates one and keeps it in the data folder")
    token_ttl_days: int = 30
    max_tokens_per_user: int = Field(50, ge=1, description="Live sign-in tokens an account keeps (its devices): "
                                     "a sign-in past them revokes the oldest, as a logout would")
    password_time_cost: int = Field(3, description="argon2id passes (tests lower it)")
    password_memory_kib: int = Field(65536, description="argon2id memory in KiB (tests lower it)")
    cors_origins: list[str] = []
    log_level: str = Field("INFO", description="Root log level (INFO logs one access line per request)")
    log_format: str = Field("json", pattern="^(json|plain)$",
                            description="json: one JSON object per line; plain: a short line for a person")
    worker_metrics_port: int | None = Field(None, description="Celery worker: serve /metrics on this port")
    metrics_port: int | None = Field(None, description="API process: also serve /metrics, without a token, on "
                                     "this internal port (never publish it)")
    stall_trace_ms: float = Field(0, ge=0, le=10_000,
                                  description="API process: log the stacks that hold the event loop longer "
                                  "than this many milliseconds (a diagnosis; 0: off)")
    metrics_token: str | None = Field(None, description="GET /metrics on the public port needs "
                                      "'Authorization: Bearer <token>'; unset: 404 there")

    # --- feed ----------------------------------------------------------------------
    feed_cap: int = 800
    transaction_retry_s: float = Field(60.0, gt=0, le=120, description="How long a transaction is retried "
                                       "after write conflicts with concurrent ones")
    transaction_outage_s: float = Field(2.0, ge=0, le=60, description="How long a transaction is retried while "
                                        "MongoDB is unreachable (an election); then the request answers 503")
    fanout_chunk: int = Field(5000, ge=1, le=100_000,
                              description="Followers per batch of a fan-out (one read, one Lua call per reader "
                              "bucket): fewer round trips (measured: 5,000 beats 1,000 by about 25 %), each batch "
                              "holding Redis ~8 ms; at most 100,000 (a batch is one MongoDB document of ids)")
    fanout_max_followers: int = 10_000
    inactive_days: int = 14
    fanout_sweep_after_s: int = 30

    # --- real time ---------------------------------------------------------------
    event_history: int = 200
    ws_queue_size: int = 256
    ws_max_sockets_per_user: int = Field(5, ge=1, description="Open sockets per user in all API processes; "
                                         "one more closes the oldest with 4409")
    ws_recheck_s: float = Field(30.0, gt=0, le=60, description="Each socket re-checks its token (expiry, "
                                "revocation, account status) this often (at most 0.25 s late while the store keeps up)")
    ws_close_poll_s: float = Field(5.0, gt=0, le=60, description="Each API process reads the pending "
                                   "socket closes (suspensions, deletions: the outbox) this often")
    ws_heartbeat_s: float = Field(10.0, gt=0, le=60, description="Each API process refreshes its presence "
                                  "this often and sweeps the processes that stopped")
    ws_process_stale_s: float = Field(45.0, gt=0, le=600, description="An API process silent this long is "
                                      "dead: its users leave the online sets (at least 3 heartbeats)")
    position_ttl_s: int = 900

    # --- web push (issue 16) -----------------------------------------------------------
    vapid_private_key: str = Field("", description="The VAPID key pair's private half (PEM, or the raw 32-byte "
                                   "scalar in base64url) shared by every API process and worker; unset = made "
                                   "once and kept in {data_dir}/vapid_private.pem (mode 0600)")
    vapid_subject: str = Field("mailto:push@solomo.example", pattern="^(mailto:[^@\\s]+@[^@\\s]+|https://\\S+)$",
                               description="The contact push services see in the VAPID token (mailto: or https:)")
    push_allowed_hosts: str = Field("", description="Comma-separated host:port push services allowed although "
                                    "not public (http allowed for them): tests, a private push service")
    push_max_subscriptions: int = Field(10, ge=1, le=100, description="Push subscriptions per user; a new one "
                                        "beyond it replaces the oldest")
    push_timeout_s: float = Field(10.0, gt=0, le=60, description="Bound of one request to a push service")
    push_ttl_s: int = Field(86400, ge=0, le=28 * 86400, description="How long a push service keeps a message "
                            "for a device that is offline (offers: until they expire, if sooner)")
    push_max_attempts: int = Field(5, ge=1, le=20, description="Sends of one message on 429/5xx/network errors")
    push_retry_max_s: int = Field(240, ge=1, description="A retry asked for later than this (Retry-After) is "
                                  "given up: a delayed task must stay well within the broker's visibility timeout")

    # --- moderation --------------------------------------------------------------
    report_threshold: int = Field(3, description="Reports from established accounts that hide a post automatically")
    # --- abuse limits of the contract ("Stores and offers, continued") ---------------------------
    max_stores_per_merchant: int = Field(20, ge=1)
    max_live_offers_per_store: int = Field(5, ge=1)
    max_offers_per_store_per_day: int = Field(20, ge=1)
    report_min_account_age_h: int = Field(24, description="A reporter's account must be this old (and have a post "
                                          "or a check-in) for the report to count toward the automatic hide")
    # --- media (photos) -----------------------------------------------------------
    media_max_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest upload (contract: 10 MB); "
                                 "a larger body is refused while it arrives (413)")
    media_daily_quota: int = Field(200, ge=1, description="Uploads per user in any 24 hours (429 rate_limited), "
                                   "beside the per-minute rate limit of action 'media'")
    media_decode_concurrency: int = Field(2, ge=1, description="Images decoded at once per API process (each "
                                          "may take ~200 MB at 40 megapixels); more uploads wait their turn")
    media_unattached_ttl_h: float = Field(24.0, gt=0, description="Uploads never attached to a post (or made "
                                          "an avatar) are deleted this long after upload")
    rate_limits: dict[str, str] = Field(
        default_factory=lambda: {
            "post": "30/minute;500/hour",
            "repost": "30/minute;500/hour",  # its own budget: a burst of reposts does not block posting
            "comment": "60/minute;1000/hour",
            "like": "300/minute",
            "report": "20/minute;200/hour",
            "checkin": "30/minute;300/hour",
            "claim": "60/minute",
            "failed_redemption": "10/minute",  # per store: unknown or another store's codes (guessing)
            "follow": "120/minute;2000/hour",  # follow/unfollow, users and stores
            "login": "10/minute;100/hour",  # failed logins per username and address (before the password hash)
            "login_failed_ip": "30/minute;300/hour",  # failed logins per client address, any username
            "login_ip": "100/minute",  # login attempts per client address
            "register": "300/minute",  # new accounts per client address (high: NAT, and the test suite)
            "media": "30/minute;300/hour",  # photo uploads (the daily quota is media_daily_quota)
            "store_move": "10/minute;100/day",  # per store: a move rewrites the store's posts and offers
            # per caller: an edit reindexes the store, a rename drops every process's names cache, a
            # time zone change rebuilds the store's rollups in the request
            "store_edit": "30/minute;300/day",
            "profile_edit": "30/minute;300/day",  # a rename drops every process's names and the user's tokens
            "password": "10/minute;50/hour",  # wrong passwords of a signed-in user (change, delete): a stolen token
            "failed_points_charge": "10/minute",  # per store: unknown spend codes charged (guessing)
            # per caller, whatever the answer: each request with an Idempotency-Key keeps one for a day
            "offer": "20/minute;500/day",  # 20 stores × 20 offers a day fit (the per-store caps bite first)
            "points_charge": "60/minute;1000/hour",  # one a second at the counters of all the caller's stores
            # per caller: a preview reads up to 200,000 check-ins and 20,000 positions
            "audience_preview": "60/minute;600/hour",
            "spend_code": "30/minute;300/hour",  # spend codes a user creates
            "search_set_build": "30/minute;300/hour",  # store-search tier sets built (search/tiersets.py)
        },
        description='Per-user limits by action, e.g. {"post": "30/minute;500/hour"} (JSON in SOLOMO_RATE_LIMITS); '
                    '"" disables one',
    )

    @model_validator(mode="after")
    def _cluster_is_external(self) -> Settings:
        # the embedded data Redis is a single node: cluster mode against it could only fail later
        if self.redis_cluster and not self.redis_url:
            raise ValueError("SOLOMO_REDIS_CLUSTER=true needs SOLOMO_REDIS_URL (the address of any node of the "
                             "cluster); the embedded Redis is not a cluster")
        return self

    @model_validator(mode="after")
    def _stale_after_heartbeats(self) -> Settings:
        # a process that misses one or two heartbeats (a pause, a slow Redis) is not dead yet
        if self.ws_process_stale_s < 3 * self.ws_heartbeat_s:
            raise ValueError("ws_process_stale_s must be at least 3 × ws_heartbeat_s")
        return self

    @property
    def effective_mongo_url(self) -> str:
        if self.mongo_url:
            return self.mongo_url
        return (
            f"mongodb://127.0.0.1:{self.embedded_mongo_port}/"
            "?replicaSet=rs0&directConnection=true"
        )

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.embedded_redis_port}/0"

    @property
    def effective_broker_url(self) -> str:
        # kombu has no Redis Cluster transport, and the broker's queues must not compete with the
        # data Redis for memory: the broker is always a Redis of its own
        return self.broker_url or f"redis://127.0.0.1:{self.embedded_broker_port}/0"

    @property
    def embedded_ports(self) -> tuple[int | None, int | None, int | None]:
        """Ports of the embedded (mongod, data Redis, broker Redis): None for each one that is external."""
        return (
            None if self.mongo_url else self.embedded_mongo_port,
            None if self.redis_url else self.embedded_redis_port,
            None if self.broker_url else self.embedded_broker_port,
        )

    @property
    def uses_embedded(self) -> bool:
        return any(port is not None for port in self.embedded_ports)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


INSECURE_SECRET_KEYS = frozenset({"", "dev-only-change-me"})
"""Keys nobody may run with: unset, and the default of earlier versions (published in the source)."""


class InsecureSecretKey(RuntimeError):
    """The API or the worker was started without a secret key of its own."""


def has_secret_key(settings: Settings) -> bool:
    return settings.secret_key.strip() not in INSECURE_SECRET_KEYS


def require_secret_key(settings: Settings, process: str) -> None:
    """Refuses to start ``process`` with the default key: anyone could forge what it signs."""
    if not has_secret_key(settings):
        raise InsecureSecretKey(
            f"{process}: SOLOMO_SECRET_KEY is not set (or is the published default), so anyone could forge "
            "what it signs. Set it to a long random string shared by every API process and worker, e.g. "
            "`export SOLOMO_SECRET_KEY=$(openssl rand -hex 32)`; `make run` (solomo dev) generates one and "
            "keeps it in its data folder.")
