"""``solomo.core.ids``: ids from text, one object per id while it is in use."""

from __future__ import annotations

import pytest
from bson import ObjectId
from bson.errors import InvalidId

from solomo.core import ids
from solomo.core.errors import NotFound


def test_the_same_text_gives_the_same_object_and_any_text_the_right_id():
    interned = ids._Interned(4)
    texts = [str(ObjectId()) for _ in range(11)]
    first = [interned.get(t) for t in texts]
    assert [str(oid) for oid in first] == texts
    assert interned.get(texts[-1]) is first[-1]  # in use: the same object
    assert interned.get(texts[-2]) is first[-2]
    assert len(interned.recent) + len(interned.older) <= 8  # bounded: two generations of four
    again = [interned.get(t) for t in texts]  # the old ones are made anew, equal all the same
    assert again == first and [str(oid) for oid in again] == texts
    assert interned.get(texts[0].upper()) == first[0]
    with pytest.raises(InvalidId):
        interned.get("z" * 24)
    assert "z" * 24 not in interned.recent


@pytest.mark.parametrize("value", ["z" * 24, "abc", 5, None, "0" * 23, b"0" * 12])
def test_anything_but_an_ids_text_is_no_id(value):
    assert ids.maybe_id(value) is None
    with pytest.raises(NotFound):
        ids.parse_id(value)


def test_an_ids_text_is_its_id():
    oid = ObjectId()
    assert ids.maybe_id(str(oid)) == oid == ids.object_id(str(oid)) == ids.parse_id(str(oid))
    assert ids.maybe_id(str(oid)) is ids.object_id(str(oid))
