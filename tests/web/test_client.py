"""The client in a real browser against the real service: it loads cleanly, signs up and in,
speaks both languages, keeps user text as text, and shows each role its own screens."""

from __future__ import annotations

from tests.support import make_account, register, unique_name
from tests.web.guards import websocket_refusal


async def test_page_loads_without_errors_and_login_works(phone, client, live_server, screenshots):
    account = await register(client)
    sockets_missing = await websocket_refusal(live_server, account.token) is not None
    p = await phone()
    await p.goto()
    page = p.page
    await page.wait_for_selector("form.auth-form.login")
    assert await page.title() == "SoLoMo"
    await p.screenshot(screenshots / "login.png")
    # a wrong password is shown in words, not as a code
    form = page.locator("form.auth-form")
    await form.locator("input[name=username]").fill(account.username)
    await form.locator("input[name=password]").fill("wrong-password")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector("form.auth-form .error:not([hidden])")
    assert await form.locator(".error").inner_text() == "Wrong username or password."
    await p.login(account.username)
    assert await page.evaluate("location.hash") == "#/home"
    assert await page.evaluate("localStorage.getItem('solomo.token')")
    await p.route("#/me")
    assert await page.locator(".profile .muted").first.inner_text() == f"@{account.username} · User"
    p.assert_clean(allow_socket_failures=sockets_missing)


async def test_sign_up_then_log_out_and_back_in(phone, client, live_server):
    p = await phone()
    await p.goto("#/register")
    page = p.page
    name = unique_name("web")
    form = page.locator("form.auth-form.register")
    await form.locator("input[name=username]").fill(name)
    await form.locator("input[name=password]").fill("password123")
    await form.locator("input[name=display_name]").fill("Web Tester")
    await form.locator("select[name=role]").select_option("merchant")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector("nav.tabs")
    assert await page.evaluate("location.hash") == "#/merchant"  # a merchant lands on their stores
    assert await page.locator(".tab[data-tab=stores]").count() == 1
    login = await client.post("/v1/auth/login", json={"username": name, "password": "password123"})
    assert login.json()["user"]["role"] == "merchant" and login.json()["user"]["display_name"] == "Web Tester"
    # taken usernames are explained
    await p.route("#/me")
    await page.locator("button.logout").click()
    await page.wait_for_selector("form.auth-form.login")
    assert await page.evaluate("localStorage.getItem('solomo.token')") is None
    await p.goto("#/register")
    form = page.locator("form.auth-form.register")
    await form.locator("input[name=username]").fill(name.upper())
    await form.locator("input[name=password]").fill("password123")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector("form.auth-form .error:not([hidden])")
    assert await form.locator(".error").inner_text() == "That username is taken."
    await p.login(name)
    assert await page.evaluate("location.hash") == "#/merchant"


async def test_chinese_browser_gets_chinese_and_the_switch_overrides(phone, screenshots):
    p = await phone(locale="zh-CN")
    await p.goto("#/register")
    page = p.page
    await page.wait_for_selector("form.auth-form.register")
    await p.screenshot(screenshots / "register_zh.png")
    await p.goto("#/login")
    assert await page.locator("form.auth-form button[type=submit]").inner_text() == "登录"
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    await page.locator("header .lang-switch").click()
    await page.wait_for_selector("form.auth-form button[type=submit]:text-is('Log in')")
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    assert await page.locator("form.auth-form button[type=submit]").inner_text() == "Log in"  # remembered
    english = await phone(locale="en-GB")
    await english.goto()
    assert await english.page.locator("form.auth-form button[type=submit]").inner_text() == "Log in"


async def test_both_languages_have_every_string(phone):
    p = await phone()
    await p.goto()
    missing = await p.page.evaluate("""async () => {
        const m = await import('/static/js/i18n.js');
        const en = Object.keys(m._tables.en), zh = Object.keys(m._tables.zh);
        return {onlyEn: en.filter(k => !zh.includes(k)), onlyZh: zh.filter(k => !en.includes(k)), n: en.length};
    }""")
    assert missing["onlyEn"] == [] and missing["onlyZh"] == []
    assert missing["n"] > 150


async def test_user_text_stays_text(phone, client):
    hostile = "<img src=x onerror=__pwned=1>"  # within a display name's 32 characters
    name = unique_name("x")
    resp = await client.post("/v1/auth/register", json={"username": name, "password": "password123",
                                                         "display_name": hostile})
    assert resp.status_code == 201
    p = await phone()
    await p.login(name)
    await p.route("#/me")
    heading = p.page.locator(".profile h2")
    assert await heading.inner_text() == hostile
    assert await p.page.locator(".profile img").count() == 0
    assert await p.page.evaluate("window.__pwned") is None


async def type_location(p, lat: str, lng: str):
    """Types a position into the header's picker and applies it; returns the picker's form."""
    await p.page.locator("header .loc-chip").click()
    form = p.page.locator(".location-form")
    await form.locator("input[name=lat]").fill(lat)
    await form.locator("input[name=lng]").fill(lng)
    await form.locator("button[type=submit]").click()
    return form


async def test_location_from_device_and_from_the_picker(phone, client):
    account = await register(client)
    p = await phone(lat=48.8584, lng=2.2945)
    await p.login(account.username)
    chip = p.page.locator("header .loc-chip")
    assert "48.8584, 2.2945" in await chip.inner_text()
    await chip.click()
    await p.page.locator(".location-form .chip", has_text="People's Square").click()
    assert "31.2304, 121.4737" in await chip.inner_text()
    form = await type_location(p, "22.5431", "114.0579")
    assert "22.5431, 114.0579" in await chip.inner_text()
    stored = await p.page.evaluate("JSON.parse(localStorage.getItem('solomo.location'))")
    assert stored["source"] == "picked" and stored["lat"] == 22.5431
    await chip.click()
    await form.locator("input[name=lat]").fill("123")
    await form.locator("button[type=submit]").click()
    assert await form.locator("input[name=lat]:invalid").count() == 1  # the browser refuses it
    assert "22.5431, 114.0579" in await chip.inner_text()


async def test_each_role_sees_its_own_screens(phone, client, services, screenshots):
    user = await register(client)
    merchant = await register(client, role="merchant")
    moderator = await make_account(services, "moderator")
    expected = {
        user.username: ("#/home", ["home", "nearby", "topics", "wallet", "me"], "user_home.png"),
        merchant.username: ("#/merchant", ["stores", "home", "nearby", "topics", "me"], "merchant_stores.png"),
        moderator.username: ("#/mod/queue", ["queue", "words", "audit", "users", "me"], "moderator_queue.png"),
    }
    for username, (home, tabs, shot) in expected.items():
        p = await phone(lat=31.2304, lng=121.4737)
        await p.login(username)
        await p.page.wait_for_function("(h) => document.body.dataset.view === h", arg=home)
        assert await p.page.locator("nav.tabs .tab").evaluate_all("els => els.map(e => e.dataset.tab)") == tabs
        assert await p.page.locator("nav.tabs .tab.active").evaluate_all("els => els.map(e => e.dataset.tab)") == [
            tabs[0]]
        await p.screenshot(screenshots / shot)
    # a user cannot open the moderator's screens: they are sent home instead
    p = await phone()
    await p.login(user.username)
    await p.goto("#/mod/queue")
    await p.page.wait_for_function("document.body.dataset.view === '#/home'")


async def test_signing_out_leaves_no_position_for_the_next_account(phone, client, live_server):
    """A shared browser: the first account typed where it was; after it signs out (or deletes its
    account), the next one to sign in — with the device's position refused — neither sees those
    coordinates nor sends them as its own socket's location."""
    first, second = await register(client), await register(client)
    p = await phone()  # no geolocation permission: the device is refused
    await p.login(first.username)
    chip = p.page.locator("header .loc-chip")
    await type_location(p, "22.5431", "114.0579")
    assert "22.5431, 114.0579" in await chip.inner_text()
    await p.route("#/me")
    await p.page.locator("button.logout").click()
    await p.page.wait_for_selector("form.auth-form.login")
    stored = await p.page.evaluate("localStorage.getItem('solomo.location')")
    assert "22.5431" not in str(stored) and "114.0579" not in str(stored), stored
    sent: list[str] = []
    p.page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    await p.login(second.username)
    assert "22.5431" not in await chip.inner_text()
    assert "31.2304, 121.4737" in await chip.inner_text()  # the default place
    if await websocket_refusal(live_server, second.token) is None:
        await p.wait_socket_open()
        await p.page.wait_for_function("() => true")
        await p.page.wait_for_timeout(300)
        locations = [f for f in sent if '"location"' in f]
        assert locations and not [f for f in locations if "22.5431" in f], sent
    p.assert_clean(allow_socket_failures=True)
