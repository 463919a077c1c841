"""One thin module per resource. Each handler declares its route on ``@endpoint``; a module's other
routes (files, the socket, health checks) are its ``extra_routes``. The app orders them so a literal
path segment is tried before a parameter (``solomo.routing.most_specific_first``)."""

ROUTE_MODULES = [
    "solomo.api.health",
    "solomo.api.accounts",
    "solomo.api.stores",
    "solomo.api.insights",
    "solomo.api.checkins",
    "solomo.api.social",
    "solomo.api.posts",
    "solomo.api.feeds",
    "solomo.api.offers",
    "solomo.api.moderation",
    "solomo.api.push",
    "solomo.api.search",
    "solomo.api.media",
    "solomo.api.blocking",
    "solomo.api.notifications",
    "solomo.api.reposts",
    "solomo.api.profile",
    "solomo.api.loyalty",
    "solomo.api.realtime",
    "solomo.api.web",
    "solomo.api.audiences",
]
