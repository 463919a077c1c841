"""How the page's socket answers two closes: 4409 (a sixth socket of the user took its slot) and
4400 (a resume id the server cannot read).

- 4409: the page does not take the slot straight back (which would close another of the user's
  sockets, which would take it back in turn, for ever); it reconnects when it is shown again.
- 4400: the page forgets the stored id and connects afresh, instead of being refused for ever.
"""

from __future__ import annotations

from tests.realtime.wsclient import close_code, open_ws
from tests.support import register


async def test_a_page_whose_slot_was_taken_waits_to_be_shown_again(phone, client, live_server):
    me = await register(client)
    page = await phone()
    await page.login(me.username)
    await page.wait_socket_open()

    others = [await open_ws(live_server, me.token) for _ in range(5)]  # the sixth socket: the page's closes
    try:
        await page.page.wait_for_selector("body[data-socket='closed']")
        # it stays closed while the others keep their slots (a reconnect, 0.25–0.5 s after a close,
        # would have closed the oldest of them)
        await page.page.evaluate("new Promise((resolve) => setTimeout(resolve, 1500))")
        assert await page.page.evaluate("document.body.dataset.socket") == "closed"
        # shown again: it connects, and the oldest other socket is the one closed now
        await page.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        await page.wait_socket_open()
        code, _ = await close_code(others[0], timeout=10)
        assert code == 4409
    finally:
        for ws in others:
            await ws.close()
    page.assert_clean(allow_socket_failures=True)


async def test_a_resume_id_the_server_cannot_read_is_forgotten(phone, client):
    me = await register(client)
    page = await phone()
    await page.login(me.username)
    await page.wait_socket_open()
    key = f"solomo.last_event.{me.id}"
    await page.page.evaluate("(k) => localStorage.setItem(k, 'not-an-event-id')", key)
    await page.page.reload()  # the socket opens with the stored id, and is closed with 4400
    await page.page.wait_for_selector("body[data-ready='1']")
    await page.page.wait_for_function("(k) => localStorage.getItem(k) !== 'not-an-event-id'", arg=key)
    await page.wait_socket_open()  # and connects afresh
    await page.page.evaluate("new Promise((resolve) => setTimeout(resolve, 500))")
    assert await page.page.evaluate("document.body.dataset.socket") == "open"
    page.assert_clean(allow_socket_failures=True)
