"""The Prometheus metric objects, defined once so any package can import and update them.

How they are collected across processes and served is :mod:`solomo.observability`'s business.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The three HTTP metrics are updated through solomo.core.httpseries only (counted without locks).
HTTP_LATENCY = Histogram(
    "solomo_http_request_duration_seconds",
    "Time from request start to the last body byte, by route template",
    ["method", "route"],
    buckets=HTTP_LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "solomo_http_requests", "HTTP responses by route template and status", ["method", "route", "status"]
)
HTTP_IN_PROGRESS = Gauge(
    "solomo_http_requests_in_progress", "Requests being served", multiprocess_mode="livesum"
)

FANOUT_LAG = Histogram(
    "solomo_fanout_lag_seconds",
    "Time from a post's creation to the end of its fan-out",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
FANOUT_ENTRIES = Counter(
    "solomo_fanout_entries", "Timeline entries written by fan-out", ["target"]  # home | cell | topic | store
)
STORE_SEARCH_SET_PAGES = Counter(
    "solomo_store_search_set_pages",
    "First pages of a store search near a point asked of the tiers' GEO sets (search/tiersets.py), by "
    "whether the sets answered (no: MongoDB did)",
    ["answered"],
)
STORE_SEARCH_SET_BUILDS = Counter(
    "solomo_store_search_set_builds", "Store-search tier GEO sets built from MongoDB (search/tiersets.py)"
)
SOCKETS_CONNECTED = Gauge(
    "solomo_ws_connected_sockets", "WebSockets currently open", multiprocess_mode="livesum"
)
EVENTS_DELIVERED = Counter(
    "solomo_events_delivered", "Real-time events queued to a connected socket", ["type"]
)
EVENTS_DROPPED = Counter(
    "solomo_events_dropped", "Real-time events not delivered to a socket", ["reason"]
)
SLOW_CLIENT_CLOSES = Counter(
    "solomo_ws_slow_client_closes", "Sockets closed because their bounded queue overflowed"
)

EVENT_LOOP_LAG = Histogram(
    "solomo_event_loop_lag_seconds",
    "How late the API's event loop ran a timer due every tick: how long something held the loop",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENT_LOOP_MAX_STALL = Gauge(
    "solomo_event_loop_max_stall_seconds",
    "The longest event-loop stall of the last window (solomo.core.looplag.WINDOW_S seconds)",
    multiprocess_mode="livemax",
)
GC_CPU = Histogram(
    "solomo_gc_cpu_seconds",
    "CPU time of one garbage collection of the API process (its thread's, so time the process was "
    "not scheduled is not counted), by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
