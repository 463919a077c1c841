"""The real-time event catalogue (solomo/core/eventtypes.py) and its documentation
(docs/design.md, "Real-time events") list the same types and the same payload fields; payloads
keep their wire format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from solomo.core.eventtypes import EVENTS, FeedNew, NotificationEvent, OfferEvent, UserSummary, event_types

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"
_HEADING = re.compile(r"^### `([^`]+)`(?: kind `([^`]+)`)?\s*$")
_ROW = re.compile(r"^\| `([^`]+)` \|")


def _section() -> list[str]:
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index("\n## Real-time events\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None].splitlines()


def _documented() -> tuple[list[str], dict[tuple[str, str | None], list[str]]]:
    """(types in the summary table, fields of each payload table by (type, kind))."""
    types: list[str] = []
    fields: dict[tuple[str, str | None], list[str]] = {}
    current: tuple[str, str | None] | None = None
    for line in _section():
        heading = _HEADING.match(line)
        if heading:
            current = (heading.group(1), heading.group(2))
            fields[current] = []
            continue
        row = _ROW.match(line)
        if row:
            (types if current is None else fields[current]).append(row.group(1))
    return types, fields


def _catalogue() -> dict[tuple[str, str | None], list[str]]:
    out: dict[tuple[str, str | None], list[str]] = {}
    for model in EVENTS:
        default = model.model_fields["kind"].default if "kind" in model.model_fields else None
        kind = default if isinstance(default, str) else None  # a model for one kind names it
        out[(model.event_type, kind)] = list(model.model_fields)
    return out


def test_the_design_table_lists_exactly_the_catalogues_types():
    types, _ = _documented()
    assert types == event_types()


def test_each_documented_payload_has_exactly_the_models_fields():
    _, fields = _documented()
    assert fields == _catalogue()


def test_payloads_keep_their_wire_format():
    who = UserSummary(id="u", username="ann", display_name="Ann")
    assert FeedNew(post_id="p").data() == {"post_id": "p"}
    note = NotificationEvent(id="n", kind="follow", actors=[who], actor_count=1, post=None, comment=None,
                             offer=None, read=False, updated_at="t", total=3)
    assert note.data() == {"id": "n", "kind": "follow", "actors": [{"id": "u", "username": "ann",
                                                                   "display_name": "Ann"}],
                           "actor_count": 1, "post": None, "comment": None, "offer": None, "read": False,
                           "updated_at": "t", "total": 3}  # null is part of the Notification, not omitted
    with pytest.raises(ValidationError):
        NotificationEvent(**{**note.model_dump(), "kind": "poke"})
    offer = OfferEvent(id="o", store={"id": "s", "name": "S", "lat": 1.0, "lng": 2.0}, title="t", description="",
                       radius_m=100, stock=None, claimed=0, audience="followers", status="live", expires_at="x",
                       created_at="y",
                       distance_m=1.5)
    assert offer.data()["stock"] is None  # null is part of the Offer, not omitted


def test_a_misspelt_field_is_refused():
    with pytest.raises(ValidationError):
        FeedNew(post=1)  # type: ignore[call-arg]
