"""A phone-sized browser page on the live server, and the steps the stories share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE = {"width": 390, "height": 844}
LIVE_TIMEOUT_MS = 20_000


@dataclass
class PhonePage:
    context: Any
    page: Any
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, browser: Any, base_url: str, *, lat: float | None = None, lng: float | None = None,
                   locale: str = "en-US") -> PhonePage:
        options: dict[str, Any] = {"viewport": PHONE, "device_scale_factor": 1, "is_mobile": True,
                                   "has_touch": True, "locale": locale, "base_url": base_url}
        if lat is not None and lng is not None:
            options["geolocation"] = {"latitude": lat, "longitude": lng, "accuracy": 10}
            options["permissions"] = ["geolocation"]
        context = await browser.new_context(**options)
        context.set_default_timeout(10_000)
        page = await context.new_page()
        self = cls(context, page, base_url)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("response", self._on_response)
        return self

    def _on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)

    def _on_response(self, resp: Any) -> None:
        path = resp.url.removeprefix(self.base_url)
        # 4xx from the API are part of the contract (the page shows them in words); anything
        # else that fails — the page's own files, any 5xx — is a defect.
        if resp.status >= 500 or (resp.status >= 400 and not path.startswith("/v1/")):
            self.bad_responses.append(f"{resp.status} {path}")

    def js_errors(self, *, allow_socket_failures: bool = False) -> list[str]:
        """Script errors and console errors, except Chrome's line for every non-2xx fetch
        (checked through bad_responses instead)."""
        errors = list(self.page_errors)
        for text in self.console_errors:
            if text.startswith("Failed to load resource"):
                continue
            if allow_socket_failures and text.startswith("WebSocket connection to"):
                continue
            errors.append(text)
        return errors

    def assert_clean(self, *, allow_socket_failures: bool = False) -> None:
        assert not self.bad_responses, self.bad_responses
        assert not self.js_errors(allow_socket_failures=allow_socket_failures), self.js_errors(
            allow_socket_failures=allow_socket_failures)

    async def goto(self, hash_route: str = "") -> None:
        await self.page.goto(f"/{hash_route}")
        await self.page.wait_for_selector("body[data-ready='1']")

    async def route(self, hash_route: str) -> None:
        """Client-side navigation (keeps the socket open)."""
        await self.page.evaluate("(h) => { location.hash = h; }", hash_route)
        await self.page.wait_for_function("(h) => document.body.dataset.view === h", arg=hash_route)

    async def login(self, username: str, password: str = "password123") -> None:
        await self.goto("#/login")
        form = self.page.locator("form.auth-form")
        await form.locator("input[name=username]").fill(username)
        await form.locator("input[name=password]").fill(password)
        await form.locator("button[type=submit]").click()
        await self.page.wait_for_selector("nav.tabs")

    async def page_until(self, locator: Any, pages: int = 50) -> None:
        """Press the list's "more" button until ``locator`` shows (the shared test database may hold
        older items ahead of ours), then scroll to it."""
        for _ in range(pages):
            if await locator.count():
                break
            await self.page.locator("button.more").click()
            await self.page.wait_for_timeout(100)
        await locator.scroll_into_view_if_needed()

    async def wait_socket_open(self) -> None:
        await self.page.wait_for_selector("body[data-socket='open']", timeout=LIVE_TIMEOUT_MS)

    async def screenshot(self, path: Path) -> None:
        await self.page.evaluate("document.fonts.ready")
        await self.page.evaluate("Promise.all(document.getAnimations().map((a) => a.finished))")
        await self.page.screenshot(path=str(path), full_page=False)

    async def close(self) -> None:
        await self.context.close()


async def quiet_moderation_queue(services: Any, *, keep: Any) -> None:
    """Takes every item but ``keep`` (a post or offer ObjectId) out of the moderation queue, in the
    test database only: the suite leaves thousands of reported and held items behind, more than a
    browser can page through. Done in MongoDB directly (no feed task is needed: nothing here is
    published), so the worker stays free for the test's own events."""
    await services.db.posts.update_many({"_id": {"$ne": keep}, "queued_ms": {"$exists": True}},
                                        {"$unset": {"queued_ms": ""}})
    await services.db.posts.update_many({"_id": {"$ne": keep}, "status": "pending_review"},
                                        {"$set": {"status": "removed"}})
    await services.db.offers.update_many({"_id": {"$ne": keep}, "status": "pending_review"},
                                         {"$set": {"status": "removed"}})
