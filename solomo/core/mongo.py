"""Type names for PyMongo's generic classes: SoLoMo reads and writes documents as plain dicts."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
Client = AsyncMongoClient[Document]
Database = AsyncDatabase[Document]
Collection = AsyncCollection[Document]
Session = AsyncClientSession

REDONE = WriteConcern(w=1, j=False)
"""For bookkeeping that a re-run of its idempotent task writes again: the fan-out's checkpoints,
its topic counts and its done mark (``feed.fanout``). Acknowledged once the primary applied it,
without waiting for the journal or the other members (a write: 0.26 ms against 0.95, median,
measured on the embedded set). A crash or an election can lose only a suffix of what was
acknowledged this way — the journal and the oplog are ordered, and any later write acknowledged
by a majority makes everything before it durable — and the fan-out writes its done mark last. So
a lost write takes the done mark with it: the post stays pending, the sweep sends it again and the
re-run writes them again. Everything a client was told (the post itself, a like, a claim) keeps
the client's defaults (``solomo.db.DURABILITY``)."""

__all__ = ["REDONE", "Client", "Collection", "Database", "Document", "Session"]
