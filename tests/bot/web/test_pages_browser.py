"""The history and release pages, and the board's accessibility, in real Chromium: the
history of 200 releases paged through its Older links (no duplicate, no gap) and filtered; a
release's page with its members, seals, steps and links; a ship in progress followed live;
axe-core on every kind of page (board, history, release, stats) with zero violations; the one
polite live region speaking once when a seal turns red and never on an unchanged poll; the
keyboard focus kept across a refresh; the offline line naming the cause and the time of the
last good poll. One browser for the module; each test its own database and server.

axe-core is the npm package (``npm ci`` at the repository root puts it in node_modules/); its
tests skip without it, saying so, except under CI, where they fail."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from conductor.bootstrap import Conductor
from conductor.states import RESEAL, RunKind
from smoke.config import FULL_CHROMIUM
from smoke.runner import LAUNCH_ARGS
from store.db import Database
from tests.axe import axe_script, violations
from tests.bot.web.conftest import Served, Ship, sealed_domain, serve, shipper
from tests.helpers import (
    GUILD,
    OPERATOR,
    FakeRunner,
    MakeReviewed,
    assembled,
    bring_to_reviewed,
    red_with_screenshots,
)
from tests.release_history import seed_releases

#: how long the page is waited for (a load, an element, a poll: every 2 s), in ms: an outer
#: bound, each wait ends as soon as what it waits for is there
WAIT_MS = 60_000

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not Path(FULL_CHROMIUM).exists(), reason=f"needs Chromium at {FULL_CHROMIUM}"
    ),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=FULL_CHROMIUM, args=list(LAUNCH_ARGS), headless=True
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


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        opened = await context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        yield opened
        assert errors == []
    finally:
        await context.close()


async def goto(page: Page, url: str) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == 200, url


async def polls(page: Page) -> int:
    return int(await page.locator("#board").get_attribute("data-polls") or 0)


async def wait_polls(page: Page, count: int) -> None:
    """Until the page has polled ``count`` more times (the board's own counter)."""
    start = await polls(page)
    await page.wait_for_function(
        "(n) => Number(document.getElementById('board').dataset.polls || 0) >= n",
        arg=start + count,
        timeout=WAIT_MS,
    )


# -- the history and the release page ------------------------------------------------------------


async def test_the_history_pages_through_200_releases_and_filters_by_state(
    page: Page, served: Served, db: Database
) -> None:
    seeded = await seed_releases(db, 200, GUILD)
    await goto(page, f"{served.base}/deployments/history")
    seen: list[int] = []
    pages = 0
    while True:
        pages += 1
        ids = await page.locator("tr.release").evaluate_all(
            "(rows) => rows.map((r) => +r.dataset.id)"
        )
        assert 0 < len(ids) <= 25
        seen += ids
        older = page.locator("#older")
        if await older.count() == 0:
            break
        await older.click()
        await page.wait_for_url(re.compile(r"before=\d+"))
    assert seen == [i for i, _, _ in seeded.newest_first()]  # every one once, newest first
    assert pages == 8
    # relative times beside the absolute ones, filled in by the page
    ago = page.locator("tr.release .ago").first
    assert re.fullmatch(r" \(\d+ (min|h|d|months|years) ago\)", await ago.inner_text() or "")

    await page.locator("nav.filters a", has_text=re.compile(r"^abandoned$")).click()
    await page.wait_for_url(re.compile(r"state=abandoned"))
    abandoned: list[str] = []
    while True:
        abandoned += await page.locator("tr.release").evaluate_all(
            "(rows) => rows.map((r) => r.dataset.state)"
        )
        older = page.locator("#older")
        if await older.count() == 0:
            break
        await older.click()
        await page.wait_for_load_state()
    assert abandoned == ["abandoned"] * 49
    assert await page.locator('nav.filters a[aria-current="page"]').inner_text() == "abandoned"


async def test_a_release_page_shows_its_members_seals_steps_and_links(
    page: Page, served: Served, domain: Conductor, ship: Ship
) -> None:
    red = await ship("checkout", red_with_screenshots(["/signin"]))
    await domain.releases.set_notes_thread(GUILD, red.slug, 4242)
    await goto(page, f"{served.base}/deployments")
    await page.locator(f"#production-{red.slug}").click()
    await page.wait_for_url(re.compile(rf"/deployments/releases/{red.slug}\?guild=1001$"))
    assert await page.locator("#members .member").count() == 1
    assert "Checkout-Core" in await page.locator("#members .member .title").inner_text()
    assert await page.locator("#seals .seal-record").count() == 1
    assert await page.locator("#seals .check-row").count() == 2
    image = page.locator("#seals img")
    await image.wait_for(state="visible")
    assert await image.evaluate("(img) => img.complete ? img.naturalWidth : 0") == 8
    steps = page.locator("#runs .step")
    assert await steps.count() == 5
    assert await page.locator("#thread").get_attribute("href") == (
        "https://discord.com/channels/1001/4242"
    )
    shipped = await page.locator("#shipped .ago").inner_text()
    assert shipped == " (just now)"


async def test_a_ship_in_progress_is_followed_live_on_the_board_and_its_page(
    browser: Browser,
    page: Page,
    served: Served,
    domain: Conductor,
    runner: FakeRunner,
    make_reviewed: MakeReviewed,
) -> None:
    slug = await assembled(domain, make_reviewed, "live")
    await goto(page, f"{served.base}/deployments")
    other = await page.context.new_page()
    await goto(other, f"{served.base}/deployments/releases/{slug}")
    runner.gate = asyncio.Event()
    runner.started.clear()
    task = asyncio.create_task(domain.runs.start(RunKind.SHIP, GUILD, OPERATOR))
    try:
        await asyncio.wait_for(runner.started.wait(), WAIT_MS / 1000)
        for shown in (page, other):
            current = shown.locator("#running .current-step")
            await current.wait_for(timeout=WAIT_MS)
            assert await current.inner_text() == "seal"
            await shown.wait_for_function(
                "() => /^\\d+ s$/.test(document.querySelector('#running .elapsed')?.textContent)",
                timeout=WAIT_MS,
            )
        # the flip comes before the seal: the same poll may see the release shipped
        said = await page.locator("#announce").inner_text()
        assert said.startswith(f"A ship of {slug} started, by {OPERATOR.name}."), said
    finally:
        runner.gate.set()
        await task
    for shown in (page, other):
        await shown.locator("#running").wait_for(state="detached", timeout=WAIT_MS)
    await other.locator('#runs .run[data-status="done"]').wait_for(timeout=WAIT_MS)


# -- accessibility -------------------------------------------------------------------------------


async def axe_violations(browser: Browser, url: str, status: int = 200) -> list[dict[str, Any]]:
    """axe-core's violations on ``url`` (injected past the CSP, which forbids it otherwise)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    try:
        opened = await context.new_page()
        response = await opened.goto(url)
        assert response is not None and response.status == status, url
        return await violations(opened)
    finally:
        await context.close()


async def test_axe_finds_no_violation_on_any_kind_of_page(
    browser: Browser, served: Served, domain: Conductor, ship: Ship, make_reviewed: MakeReviewed
) -> None:
    axe_script()
    await ship("green")
    red = await ship("red", red_with_screenshots(["/signin", "/tasks"]))
    await make_reviewed("next-core")
    await domain.releases.open(GUILD, "next", OPERATOR, over_held=red.slug)
    await domain.releases.add_task(GUILD, "next-core", OPERATOR)
    await domain.locks.lock(GUILD, "a migration is running", OPERATOR)
    for path in (
        "/deployments",
        "/deployments/history",
        "/deployments/history?state=shipped&before=3",
        f"/deployments/releases/{red.slug}",
        "/deployments/stats",
    ):
        assert await axe_violations(browser, served.base + path) == [], path
    # the refusals are pages too
    for path, status in (
        ("/deployments/releases/no-such-release", 404),
        ("/deployments/history?before=yesterday", 400),
    ):
        assert await axe_violations(browser, served.base + path, status) == [], path


async def test_the_live_region_speaks_once_when_a_seal_turns_red_and_never_on_an_unchanged_poll(
    page: Page, served: Served, domain: Conductor, ship: Ship, runner: FakeRunner
) -> None:
    green = await ship("steady")
    await goto(page, f"{served.base}/deployments")
    live = page.locator("[aria-live]")
    assert await live.count() == 1  # one live region, and it is not the status line
    assert await live.get_attribute("aria-live") == "polite"
    assert await page.locator("#live").get_attribute("aria-live") is None
    assert await page.locator("[role=status], [role=alert], [role=log]").count() == 0
    await page.evaluate(
        """() => {
            window.__said = [];
            const region = document.getElementById("announce");
            new MutationObserver(() => window.__said.push(region.textContent))
                .observe(region, { childList: true, characterData: true, subtree: true });
        }"""
    )
    await wait_polls(page, 3)
    assert await page.evaluate("window.__said") == []  # three polls, nothing changed, silence

    runner.then(red_with_screenshots(["/signin"]))
    await domain.sealer.seal(GUILD, green, trigger=RESEAL, actor=OPERATOR)
    await page.wait_for_function("() => window.__said.length > 0", timeout=WAIT_MS)
    await wait_polls(page, 3)
    said = await page.evaluate("window.__said")
    assert said == [f"The seal of {green.slug} is now red: 1 of 2 failed: /signin (status 500)."]
    assert await page.locator("#production .badge").get_attribute("data-seal") == "red"


async def test_the_keyboard_focus_stays_on_its_link_across_a_refresh(
    page: Page, served: Served, domain: Conductor, ship: Ship
) -> None:
    shipped = await ship("focus")
    await goto(page, f"{served.base}/deployments")
    link = page.locator(f"#release-{shipped.slug}")
    await link.focus()
    assert await page.evaluate("document.activeElement.id") == f"release-{shipped.slug}"
    await domain.locks.lock(GUILD, "freeze for the demo", OPERATOR)
    await page.locator("#lock").wait_for(timeout=WAIT_MS)  # the board was swapped in
    assert await page.evaluate("document.activeElement.id") == f"release-{shipped.slug}"
    assert await page.evaluate("document.activeElement.isConnected")
    await page.keyboard.press("Enter")  # and the focused link still works
    await page.wait_for_url(re.compile(rf"/deployments/releases/{shipped.slug}"))


async def test_offline_says_why_and_since_when(page: Page, served: Served, ship: Ship) -> None:
    await ship("up")
    await goto(page, f"{served.base}/deployments")
    await wait_polls(page, 1)
    good = await page.locator("#live").inner_text()
    checked = re.fullmatch(r"Live · checked (\d\d:\d\d:\d\d)", good)
    assert checked is not None, good

    async def unavailable(route: Any) -> None:
        await route.fulfill(status=503, body="the database is busy")

    await page.route("**/deployments/board?*", unavailable)
    await page.wait_for_function(
        "() => document.getElementById('live').dataset.state === 'offline'", timeout=WAIT_MS
    )
    text = await page.locator("#live").inner_text()
    offline = re.fullmatch(
        r"Offline since (\d\d:\d\d:\d\d): the server answered HTTP 503 Service Unavailable\. "
        r"Last good update at (\d\d:\d\d:\d\d); retrying every 2 s\.",
        text,
    )
    assert offline is not None, text
    assert offline.group(2) >= checked.group(1)
    said = await page.locator("#announce").inner_text()
    assert said == "The board is offline: the server answered HTTP 503 Service Unavailable."

    await page.unroute("**/deployments/board?*")
    await served.server.stop()
    await page.wait_for_function(
        "() => document.getElementById('live').textContent.includes('network error')",
        timeout=WAIT_MS,
    )
    text = await page.locator("#live").inner_text()
    assert text.startswith(f"Offline since {offline.group(1)}: the server could not be reached")
    assert f"Last good update at {offline.group(2)}" in text


async def test_the_history_and_a_release_page_fit_a_phone(
    browser: Browser, served: Served, db: Database, ship: Ship
) -> None:
    long_paths = ["/a/very/long/path/" + "segment-" * 12]
    red = await ship(
        "a-rather-long-release-name-that-goes-on-and-on", red_with_screenshots(long_paths)
    )
    context = await browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True
    )
    context.set_default_timeout(WAIT_MS)
    try:
        phone = await context.new_page()
        for path in ("/deployments/history", f"/deployments/releases/{red.slug}"):
            await goto(phone, served.base + path)
            widths = await phone.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
                " Math.max(...[...document.querySelectorAll('body *')]"
                ".map((e) => e.getBoundingClientRect().right))]"
            )
            scroll_width, client_width, widest = widths
            assert client_width == 375, path
            assert scroll_width <= client_width and widest <= client_width + 0.5, (path, widths)
    finally:
        await context.close()
