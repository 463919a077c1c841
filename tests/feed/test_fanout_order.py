"""Fan-out tasks run in any order, twice or concurrently, and the feeds still match the post's
status: every status change moves ``status_version``, and a task that finds it moved applies the
new status again instead of marking its stale work done."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bson import ObjectId

from feed import fanout
from feed.fanout import RETRACTING, RETRACTING_KEPT, fanout_post
from feed.home import rebuild_home
from feed.timeline import Timelines
from solomo.core import tasknames
from solomo.core.keys import home_key
from tests.heldtasks import HeldTasks
from tests.support import Account, make_account, random_point, register

FEED_TASKS = {tasknames.FANOUT_POST: fanout_post, tasknames.FANOUT_RETRACT: fanout_post,
              tasknames.FANOUT_RESTORE: fanout_post}
"""What the worker runs for each fan-out task (``workers/tasks.py``)."""


async def run_task(services: Any, name: str, post_id: str) -> str:
    return await FEED_TASKS[name](services, ObjectId(post_id))


@pytest.fixture
def held(hold_tasks) -> HeldTasks:
    return hold_tasks()


async def _post_in_fans_feeds(client, services, held: HeldTasks, fans: int = 3) -> tuple[list[Account], str]:
    author = await register(client)
    readers = [await register(client) for _ in range(fans)]
    for r in readers:
        assert (await client.post(f"/v1/users/{author.id}/follow", headers=r.headers)).status_code == 204
        await rebuild_home(services, ObjectId(r.id))
    lat, lng = random_point()
    resp = await client.post("/v1/posts", json={"text": "order", "lat": lat, "lng": lng}, headers=author.headers)
    assert resp.status_code == 201, resp.text
    post_id = resp.json()["id"]
    assert await run_task(services, tasknames.FANOUT_POST, await held.take(tasknames.FANOUT_POST)) == "published"
    assert await _holders(services, readers, post_id) == len(readers)
    return readers, post_id


async def _holders(services, readers: list[Account], post_id: str) -> int:
    return sum([await services.redis.zscore(home_key(r.id), post_id) is not None for r in readers])


async def _decide(client, moderator: Account, post_id: str, action: str) -> None:
    resp = await client.post(f"/v1/moderation/posts/{post_id}", headers=moderator.headers,
                             json={"action": action, "reason": "order test"})
    assert resp.status_code == 200, resp.text


async def _assert_in_line(services, readers: list[Account], post_id: str) -> None:
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    expected = len(readers) if doc["status"] == "published" else 0
    assert await _holders(services, readers, post_id) == expected, doc["status"]
    assert doc["fanout"] == "done"


async def test_every_status_change_moves_the_version(client, services, held):
    moderator = await make_account(services, "moderator")
    _, post_id = await _post_in_fans_feeds(client, services, held, fans=1)

    async def version() -> int:
        return int((await services.db.posts.find_one({"_id": ObjectId(post_id)})).get("status_version", 0))

    await _decide(client, moderator, post_id, "hide")
    assert await version() == 1
    await _decide(client, moderator, post_id, "restore")
    assert await version() == 2


async def test_late_retract_after_restore_leaves_the_post_in_feeds(client, services, held):
    moderator = await make_account(services, "moderator")
    readers, post_id = await _post_in_fans_feeds(client, services, held)
    await _decide(client, moderator, post_id, "hide")
    await _decide(client, moderator, post_id, "restore")
    # the restore's task runs first, the hide's retract arrives late (redelivered, or a slow worker)
    await run_task(services, tasknames.FANOUT_RESTORE, await held.take(tasknames.FANOUT_RESTORE))
    await run_task(services, tasknames.FANOUT_RETRACT, await held.take(tasknames.FANOUT_RETRACT))
    await _assert_in_line(services, readers, post_id)
    assert await _holders(services, readers, post_id) == len(readers)


async def test_restore_twice_and_retract_twice(client, services, held):
    moderator = await make_account(services, "moderator")
    readers, post_id = await _post_in_fans_feeds(client, services, held)
    await _decide(client, moderator, post_id, "hide")
    retract = await held.take(tasknames.FANOUT_RETRACT)
    for _ in range(2):
        await run_task(services, tasknames.FANOUT_RETRACT, retract)
        await _assert_in_line(services, readers, post_id)
    await _decide(client, moderator, post_id, "restore")
    restore = await held.take(tasknames.FANOUT_RESTORE)
    for _ in range(2):
        await run_task(services, tasknames.FANOUT_RESTORE, restore)
        await _assert_in_line(services, readers, post_id)
    assert await _holders(services, readers, post_id) == len(readers)


async def _hidden_with_its_retract(client, services, held: HeldTasks) -> tuple[Account, list[Account], str, str]:
    """A post in its fans' feeds, then hidden by a moderator: (the moderator, the fans, the post id,
    the retract task's argument, held)."""
    moderator = await make_account(services, "moderator")
    readers, post_id = await _post_in_fans_feeds(client, services, held)
    await _decide(client, moderator, post_id, "hide")
    return moderator, readers, post_id, await held.take(tasknames.FANOUT_RETRACT)


class _Killed(Exception):
    """The worker's process ending right after a call: nothing of the run after that point runs."""


async def _retract_racing(services, monkeypatch, method: str, race: Callable[[], Awaitable[None]], retract: str,
                          readers: list[Account], post_id: str, *, killed_at: str | None = None) -> None:
    """Runs the retract with ``race`` run once, inside its first call of ``Timelines.<method>``,
    before that call goes on; the feeds must then end as the post's status says: in every fan's.
    ``killed_at``: the run ends there, and the task is delivered again — ``"race"``: as that call
    returns; else the name of a function of :mod:`feed.fanout`: as the run first calls it."""
    original = getattr(Timelines, method)
    raced = False

    async def racing(self: Timelines, *args: Any, **kwargs: Any) -> Any:
        nonlocal raced
        if raced:
            return await original(self, *args, **kwargs)
        raced = True
        await race()
        result = await original(self, *args, **kwargs)
        if killed_at == "race":
            raise _Killed
        return result

    async def killed(*args: Any, **kwargs: Any) -> Any:
        raise _Killed

    monkeypatch.setattr(Timelines, method, racing)
    if killed_at not in (None, "race"):
        monkeypatch.setattr(fanout, killed_at, killed)
    if killed_at:
        with pytest.raises(_Killed):
            await run_task(services, tasknames.FANOUT_RETRACT, retract)
        monkeypatch.undo()
    await run_task(services, tasknames.FANOUT_RETRACT, retract)
    monkeypatch.undo()
    assert raced
    await _assert_in_line(services, readers, post_id)
    assert await _holders(services, readers, post_id) == len(readers)


async def _restore_as_far_as_its_checkpoint(client, services, held: HeldTasks, moderator: Account,
                                            readers: list[Account], post_id: str) -> None:
    """A moderator restores the post, and its restore run pushes it to every fan and checkpoints
    past them all, but does not finish."""
    await _decide(client, moderator, post_id, "restore")
    await held.take(tasknames.FANOUT_RESTORE)  # its run, up to its checkpoint:
    post = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    for r in readers:
        await services.redis.zadd(home_key(r.id), {post_id: int(post["created_ms"])})
    last = await services.db.follows.find_one({"target_type": "user", "target_id": post["author_id"]},
                                              sort=[("_id", -1)])
    await services.db.posts.update_one({"_id": post["_id"]}, {"$set": {"fanout_progress.user": last["_id"]}})
    assert await _holders(services, readers, post_id) == len(readers)


async def _hidden_and_a_restore_to_come(client, services, held: HeldTasks
                                        ) -> tuple[list[Account], str, str, Callable[[], Awaitable[None]]]:
    """:func:`_hidden_with_its_retract`, and the race to run inside it:
    :func:`_restore_as_far_as_its_checkpoint`. Returns (the fans, the post id, the retract task's
    argument, the race)."""
    moderator, readers, post_id, retract = await _hidden_with_its_retract(client, services, held)
    return readers, post_id, retract, functools.partial(_restore_as_far_as_its_checkpoint, client, services, held,
                                                        moderator, readers, post_id)


async def test_retract_racing_a_restore_on_another_worker(client, services, held, monkeypatch):
    """The retract read the post while hidden; before its removal lands, a moderator restores it
    and the restore task runs to the end. The removal then lands: the retract must put it back."""
    moderator, readers, post_id, retract = await _hidden_with_its_retract(client, services, held)

    async def restore() -> None:
        await _decide(client, moderator, post_id, "restore")
        await run_task(services, tasknames.FANOUT_RESTORE, await held.take(tasknames.FANOUT_RESTORE))
        assert await _holders(services, readers, post_id) == len(readers)

    await _retract_racing(services, monkeypatch, "remove", restore, retract, readers, post_id)


async def test_a_round_after_a_status_change_does_not_resume_at_another_runs_checkpoint(client, services, held,
                                                                                      monkeypatch):
    """The retract read the post while hidden; before its removal lands, a moderator restores the
    post and a restore run pushes it to every follower and checkpoints, but has not finished. The
    removal then lands. The retract's next round applies the restore, and must push from the start:
    the checkpoint it finds is the restore run's, whose work the retract has just undone (found by
    the concurrent test below, once in a CI run)."""
    readers, post_id, retract, restore = await _hidden_and_a_restore_to_come(client, services, held)

    await _retract_racing(services, monkeypatch, "remove_from_homes", restore, retract, readers, post_id)


async def test_a_retract_killed_after_its_removals_is_redelivered_without_a_checkpoint_to_trust(
        client, services, held, monkeypatch):
    """As above, but the retract's process dies as its removal returns, before its next round; the
    task is delivered again and its first round finds the restored post with the restore run's
    checkpoint, made before the removal landed. It must push from the start."""
    readers, post_id, retract, restore = await _hidden_and_a_restore_to_come(client, services, held)

    await _retract_racing(services, monkeypatch, "remove_from_homes", restore, retract, readers, post_id,
                          killed_at="race")
    marks = (await services.db.posts.find_one({"_id": ObjectId(post_id)})).get(RETRACTING)
    assert marks and len(marks) == 1  # the killed run's mark stands; the redelivered run made none


async def test_a_retract_killed_before_its_next_round_leaves_no_checkpoint_from_before_its_removals(
        client, services, held, monkeypatch):
    """As above, but the retract's process dies after its removals were all in (its mark gone),
    before its next round: the redelivered task must not find the restore run's checkpoint."""
    readers, post_id, retract, restore = await _hidden_and_a_restore_to_come(client, services, held)

    await _retract_racing(services, monkeypatch, "remove_from_homes", restore, retract, readers, post_id,
                          killed_at="_finish")
    assert not (await services.db.posts.find_one({"_id": ObjectId(post_id)})).get(RETRACTING)


async def test_failed_retractions_leave_a_bounded_number_of_marks(client, services, held, monkeypatch):
    """Each retraction that fails after its mark (Redis down, the sweep re-sending the post) leaves
    its mark; the post keeps only the newest few, and one retraction that ends takes its own away."""
    _, _, post_id, retract = await _hidden_with_its_retract(client, services, held)

    async def redis_down(*args: Any, **kwargs: Any) -> None:
        raise _Killed

    monkeypatch.setattr(fanout, "_remove_everywhere", redis_down)
    for _ in range(RETRACTING_KEPT + 3):
        with pytest.raises(_Killed):
            await run_task(services, tasknames.FANOUT_RETRACT, retract)
    monkeypatch.undo()

    async def marks() -> list[str]:
        return (await services.db.posts.find_one({"_id": ObjectId(post_id)}))[RETRACTING]

    left = await marks()
    assert len(left) == RETRACTING_KEPT
    await run_task(services, tasknames.FANOUT_RETRACT, retract)
    # its own mark came (pushing the oldest failed run's out) and went; the newer failed runs' stay
    assert await marks() == left[1:]


@pytest.mark.parametrize("delay_s", [0.0, 0.005, 0.02])
async def test_concurrent_retract_and_restore_end_in_line(client, services, held, monkeypatch, delay_s):
    """The hide's retract runs while a moderator restores the post and the restore task runs."""
    monkeypatch.setattr(services.settings, "fanout_chunk", 1)  # many awaits: the two runs interleave
    moderator = await make_account(services, "moderator")
    readers, post_id = await _post_in_fans_feeds(client, services, held, fans=4)
    await _decide(client, moderator, post_id, "hide")
    retract = await held.take(tasknames.FANOUT_RETRACT)

    async def restore() -> None:
        await asyncio.sleep(delay_s)
        await _decide(client, moderator, post_id, "restore")
        await run_task(services, tasknames.FANOUT_RESTORE, await held.take(tasknames.FANOUT_RESTORE))

    await asyncio.gather(run_task(services, tasknames.FANOUT_RETRACT, retract), restore())
    await _assert_in_line(services, readers, post_id)
    assert await _holders(services, readers, post_id) == len(readers)
