"""MongoDB indexes this package's queries need (created at start-up by solomo.db)."""

from pymongo import IndexModel

INDEXES: dict[str, list[IndexModel]] = {}
