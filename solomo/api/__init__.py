"""One thin module per resource; each exposes ``routes``. Order matters only where paths overlap."""

ROUTE_MODULES = [
    "solomo.api.health",
    "solomo.api.accounts",
    "solomo.api.stores",
    "solomo.api.checkins",
    "solomo.api.social",
    "solomo.api.posts",
    "solomo.api.feeds",
    "solomo.api.offers",
    "solomo.api.moderation",
    "solomo.api.realtime",
    "solomo.api.web",
]
