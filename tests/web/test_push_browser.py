"""The installable app in a real browser: the manifest and the service worker register, the
shell opens offline and says so, and the me page's notification switch subscribes (or, where the
browser has no push service — headless Chromium — says it could not, storing nothing), and the
worker shows a real event frame delivered through DevTools as a notification in the page's words."""

from __future__ import annotations

import io
from pathlib import Path

from bson import ObjectId
from PIL import Image

from solomo.core.events import frame
from solomo.core.keys import event_history
from tests.support import register, wait_until

SHOTS = Path("/work/notes/shots")


async def test_manifest_and_worker_are_served_with_their_types(client):
    resp = await client.get("/manifest.webmanifest")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/manifest+json")
    manifest = resp.json()
    assert manifest["start_url"] == "/" and manifest["scope"] == "/" and manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        got = await client.get(icon["src"])
        assert got.status_code == 200, icon["src"]
        if icon["type"] == "image/png":
            img = Image.open(io.BytesIO(got.content))
            assert f"{img.width}x{img.height}" == icon["sizes"]
            sizes.add(img.width)
    assert {192, 512} <= sizes
    sw = await client.get("/sw.js")
    assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["cache-control"] == "no-cache"
    shell_line = sw.text.splitlines()[1]
    assert shell_line.startswith("const SHELL = ") and '"/static/js/app.js"' in shell_line
    assert '"/static/js/views/push.js"' in shell_line and '"/"' in shell_line
    for path in ("/static/js/views/push.js", "/static/icons/badge-96.png"):
        assert (await client.get(path)).status_code == 200


async def test_installable_app_offline_shell_and_switch(phone, client, services):
    user = await register(client)
    page = await phone(lat=31.2304, lng=121.4737)
    await page.context.grant_permissions(["notifications"], origin=page.base_url)
    await page.login(user.username)
    await page.page.wait_for_selector("body[data-sw='registered']")
    # the worker took control (installed: the shell is cached)
    await page.page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20_000)
    scope = await page.page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == page.base_url + "/"
    assert await page.page.locator("link[rel=manifest]").get_attribute("href") == "/manifest.webmanifest"

    await page.route("#/me")
    switch = page.page.locator(".push-setting input[role=switch]")
    await switch.wait_for()
    assert await switch.is_visible() and not await switch.is_checked()
    await switch.click()
    # a real subscription where the browser has a push service; headless Chromium has none, and
    # then the page says so and nothing is stored (never faked)
    await page.page.wait_for_function(
        "() => { const s = document.querySelector('.push-setting .push-status'); return s && s.textContent; }")
    stored = await services.db.push_subscriptions.find_one({"user_id": ObjectId(user.id)})
    endpoint = await page.page.evaluate(
        "navigator.serviceWorker.ready.then((r) => r.pushManager.getSubscription()).then((s) => s && s.endpoint)")
    if endpoint:
        assert await switch.is_checked() and stored is not None and stored["endpoint"] == endpoint
    else:
        assert not await switch.is_checked() and stored is None
        assert "Could not turn on" in await page.page.locator(".push-status").inner_text()
    await page.screenshot(SHOTS / "push-me-switch.png")

    # the worker's push handler, fed a real event frame (the user's history) through Chromium's
    # DevTools (the push service's side of a delivery): it shows the notification, in the page's
    # words, leading to the follower
    fan = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=fan.headers)).status_code == 204
    (event_id, fields), = await services.redis.xrevrange(event_history(user.id), count=1)
    assert fields["type"] == "notification"
    cdp = await page.context.new_cdp_session(page.page)
    registrations: list[dict] = []
    worker_errors: list[str] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.on("ServiceWorker.workerErrorReported", lambda e: worker_errors.append(e["errorMessage"]))
    await cdp.send("ServiceWorker.enable")

    async def registered():
        return next((r for r in reversed(registrations)
                     if r["scopeURL"] == page.base_url + "/" and not r["isDeleted"]), None)

    async def shown():
        return await page.page.evaluate("""() => navigator.serviceWorker.ready.then((r) => r.getNotifications())
            .then((list) => list.map((n) => ({title: n.title, body: n.body, url: n.data.url})))""")

    reg = await wait_until(registered, timeout=10)
    # DevTools' delivery is fire-and-forget (no error comes back): once, in CI on a loaded machine, a
    # delivery showed nothing and no worker error was reported, so it is offered again, a bounded
    # number of times; a handler that never shows anything still fails. The notification's tag is
    # the event's id: a second delivery cannot add a second one.
    notes: list[dict] = []
    for _attempt in range(3):
        await cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": page.base_url, "registrationId": reg["registrationId"],
            "data": frame(event_id, fields["type"], fields["data"])})
        try:
            notes = await wait_until(shown, timeout=5)
            break
        except AssertionError:
            continue
    assert len(notes) == 1, (notes, worker_errors, registrations)
    (note,) = notes
    await cdp.send("ServiceWorker.disable")
    await cdp.detach()
    assert note["body"] == f"{fan.user['display_name']} started following you"
    assert note["url"] == f"/#/user/{fan.id}" and note["title"] == "SoLoMo"

    # offline: the shell still opens, from the worker's cache, and says it is offline
    await page.context.set_offline(True)
    await page.page.reload()
    await page.page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    bar = page.page.locator(".offline-bar")
    await bar.wait_for(state="visible")
    assert "offline" in (await bar.inner_text()).lower()
    assert await page.page.locator("nav.tabs").is_visible()
    await page.screenshot(SHOTS / "push-offline.png")
    await page.context.set_offline(False)
    await bar.wait_for(state="hidden")
    # Chrome logs why its incognito-like test profile has no push service: the browser's word, not ours
    errors = [e for e in page.js_errors(allow_socket_failures=True) if "does not support the Push API" not in e]
    assert not errors and not page.bad_responses, (errors, page.bad_responses)
