"""A rendered post keeps its Media list serialised once (``orjson.Fragment``): every way a post
leaves the process must still write it as the same JSON list — a page, and an event's data."""

from __future__ import annotations

import orjson
import pytest

from feed.hydrate import _media_json
from media.store import media_public
from solomo.core.eventtypes import NotificationEvent
from solomo.core.jsonio import dumps

PHOTO = {"id": "6b12db582c51128052be4b07", "width": 4000, "height": 3000, "key": "ab12", "ext": "jpg",
         "thumb_ext": "webp", "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "created_at": "2026-12-04T15:00:00.000Z"}


def test_media_is_serialised_once_and_written_as_the_list() -> None:
    media = _media_json([PHOTO, PHOTO])
    assert isinstance(media, orjson.Fragment)
    assert orjson.loads(dumps({"media": media})) == {"media": [media_public(PHOTO)] * 2}
    assert _media_json([]) == []  # no photos: a plain empty list


def test_an_event_carrying_the_post_writes_its_media_as_the_list() -> None:
    post = {"id": "p1", "text": "hi", "media": _media_json([PHOTO])}
    event = NotificationEvent(id="n1", kind="like", actors=[], actor_count=1, post=post, comment=None, offer=None,
                              read=False, updated_at="2026-12-04T15:00:00.000Z", total=1)
    data = event.data()
    assert data["post"]["media"] == [media_public(PHOTO)]
    assert orjson.loads(orjson.dumps(data))["post"]["media"] == [media_public(PHOTO)]


def test_other_unknown_values_still_refuse() -> None:
    event = NotificationEvent(id="n1", kind="like", actors=[], actor_count=1, post={"x": object()}, comment=None,
                              offer=None, read=False, updated_at="2026-12-04T15:00:00.000Z", total=1)
    with pytest.raises(Exception, match="not JSON serializable"):
        event.data()
