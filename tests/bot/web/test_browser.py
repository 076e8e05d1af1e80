"""The board in real Chromium (a plain browser, not the smoke seal's read-only one): the seal
badges after a green and a red ship, the failed check's screenshot loaded, the board following
a ship by itself without a navigation, a hostile title shown as text, and no horizontal
scroll on a phone. One browser for the module; each test its own database and server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, async_playwright

from conductor.bootstrap import Conductor
from smoke.runner import LAUNCH_ARGS
from store.db import Database
from tests.bot.web.conftest import Served, Ship, sealed_domain, serve, shipper
from tests.helpers import (
    GUILD,
    OPERATOR,
    REVIEWERS,
    FakeRunner,
    MakeReviewed,
    bring_to_reviewed,
    handoff,
    next_message_id,
    red_with_screenshots,
)

CHROMIUM = "/usr/bin/chromium"
#: how long the page is waited for (a load, an element, the board swapping itself in: it asks
#: every 2 s), in ms: an outer bound, each wait ends as soon as what it waits for is there
WAIT_MS = 60_000
HOSTILE = "<script>alert(1)</script>"

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(LAUNCH_ARGS), headless=True
        )
        yield launched
        await launched.close()


# The database, the domain and the server live on the module's loop with the browser.
@pytest_asyncio.fixture(loop_scope="module")
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.create_all()
    yield database
    await database.dispose()


@pytest_asyncio.fixture(loop_scope="module")
async def domain(db: Database, runner: FakeRunner, shots: Path) -> Conductor:
    return sealed_domain(db, runner, shots)


@pytest_asyncio.fixture(loop_scope="module")
async def make_reviewed(domain: Conductor) -> MakeReviewed:
    async def _make(slug: str, *, depends_on: str | None = None, guild_id: int = GUILD) -> None:
        await bring_to_reviewed(domain, slug, depends_on=depends_on, guild_id=guild_id)

    return _make


@pytest_asyncio.fixture(loop_scope="module")
async def ship(domain: Conductor, runner: FakeRunner, make_reviewed: MakeReviewed) -> Ship:
    return shipper(domain, runner, make_reviewed)


@pytest_asyncio.fixture(loop_scope="module")
async def served(domain: Conductor, shots: Path) -> AsyncIterator[Served]:
    async with serve(domain, shots) as board:
        yield board


class Watched:
    """A page with what it did: navigations of its main frame, dialogs, console errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.navigations: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("framenavigated", self._navigated)
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _navigated(self, frame: object) -> None:
        if frame is self.page.main_frame:
            self.navigations.append(self.page.url)

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        yield Watched(await context.new_page())
    finally:
        await context.close()


async def open_board(watched: Watched, served: Served) -> None:
    response = await watched.page.goto(served.server.url or "")
    assert response is not None and response.status == 200


async def test_the_green_badge_after_a_green_seal(
    page: Watched, served: Served, ship: Ship
) -> None:
    shipped = await ship("green")
    await open_board(page, served)
    badge = page.page.locator("#production .badge")
    assert await badge.get_attribute("data-seal") == "green"
    assert (await badge.inner_text()).strip() == "🟢 green"
    assert await badge.is_visible()
    line = await page.page.locator("#production .release-line").inner_text()
    assert shipped.slug in line and "v1" in line
    assert page.errors == []


async def test_the_red_badge_and_the_failed_check_s_screenshot_after_a_red_seal(
    page: Watched, served: Served, ship: Ship
) -> None:
    await ship("green")
    await ship("red", red_with_screenshots(["/signin"]))
    await open_board(page, served)
    badge = page.page.locator("#production .badge")
    assert await badge.get_attribute("data-seal") == "red"
    assert (await badge.inner_text()).strip() == "🔴 red"
    check = page.page.locator("#production .check")
    assert "/signin" in await check.inner_text() and "status 500" in await check.inner_text()
    image = check.locator("img")
    await image.wait_for(state="visible")
    width = await image.evaluate("(img) => img.complete ? img.naturalWidth : 0")
    assert width == 8  # the PNG the seal kept, loaded (8 × 6)
    # the earlier release keeps its green badge in the list
    assert (
        await page.page.locator('#releases .release[data-state="shipped"] .badge')
        .nth(1)
        .get_attribute("data-seal")
        == "green"
    )
    assert page.errors == []


async def test_the_board_follows_a_ship_without_reloading_the_page(
    page: Watched, served: Served, domain: Conductor, ship: Ship
) -> None:
    await open_board(page, served)
    assert await page.page.locator("#production .empty").inner_text() == "Nothing has shipped yet."
    await page.page.evaluate("window.__same_page = 'yes'")
    loaded = list(page.navigations)
    assert len(loaded) == 1

    shipped = await ship("later", {"/tasks": "status 502"})
    await page.page.wait_for_function(
        "(slug) => document.querySelector('#production .slug')?.textContent === slug",
        arg=shipped.slug,
        timeout=WAIT_MS,
    )
    assert await page.page.locator("#production .badge").get_attribute("data-seal") == "red"
    assert page.navigations == loaded  # no navigation: the board was swapped in place
    assert await page.page.evaluate("window.__same_page") == "yes"
    entries = await page.page.evaluate("performance.getEntriesByType('navigation').length")
    assert entries == 1
    assert await page.page.locator("#live").get_attribute("data-state") == "live"
    assert page.errors == []


async def test_a_script_in_a_title_is_shown_as_text(
    page: Watched, served: Served, domain: Conductor
) -> None:
    text = f"handoff xss → submitted\ntitle: {HOSTILE}\nbranch: feat/xss"
    result = await domain.handoffs.apply(handoff(text))
    assert result.review is not None
    message_id = next_message_id()
    await domain.reviews.attach_message(result.review.request_id, 77, message_id)
    for reviewer in REVIEWERS[:2]:
        await domain.reviews.record_approval(GUILD, message_id, reviewer)
    await domain.releases.open(GUILD, "xss", OPERATOR)
    await domain.releases.add_task(GUILD, "xss", OPERATOR)

    await open_board(page, served)
    title = page.page.locator("#active .member .title")
    assert await title.inner_text() == HOSTILE
    assert await page.page.locator("#active script").count() == 0
    await page.page.wait_for_timeout(300)  # time for a script to have run, had it been one
    # and again once the board has swapped itself in after a change
    await domain.locks.lock(GUILD, HOSTILE, OPERATOR)
    await page.page.locator("#lock").wait_for(timeout=WAIT_MS)
    assert HOSTILE in await page.page.locator("#lock").inner_text()
    assert await title.inner_text() == HOSTILE
    assert await page.page.locator("#board script").count() == 0
    assert page.dialogs == []
    assert page.errors == []


async def test_a_phone_sized_viewport_has_no_horizontal_scroll(
    browser: Browser, served: Served, domain: Conductor, ship: Ship, make_reviewed: MakeReviewed
) -> None:
    long_slug = ("a-long-task-slug-without-spaces-" * 2)[:63]
    await ship("a-rather-long-release-name-that-goes-on-and-on-for-a-while")
    long_paths = ["/a/very/long/path/" + "segment-" * 12, "/signin"]
    red = await ship("red-on-a-phone", red_with_screenshots(long_paths))
    await make_reviewed(long_slug)
    await domain.releases.open(GUILD, "next", OPERATOR, over_held=red.slug)
    await domain.releases.add_task(GUILD, long_slug, OPERATOR)
    await domain.locks.lock(GUILD, "x" * 280, OPERATOR)

    context = await browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True
    )
    context.set_default_timeout(WAIT_MS)
    try:
        phone = Watched(await context.new_page())
        await open_board(phone, served)
        sizes = await phone.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        scroll_width, client_width = sizes
        assert client_width == 375
        assert scroll_width <= client_width, sizes
        # nothing is cut off either: every element lies within the viewport's width
        widest = await phone.page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('body *')]"
            ".map((e) => e.getBoundingClientRect().right))"
        )
        assert widest <= client_width + 0.5, widest
        assert phone.errors == []
    finally:
        await context.close()
