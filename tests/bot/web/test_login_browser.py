"""Login with Discord in real Chromium: the board bound beyond loopback (0.0.0.0, reached at
127.0.0.1) against the e2e stand-in's OAuth2 endpoints over real HTTP. Logged out, a page
goes to Discord's authorize page; a member with the role logs in and sees the board; a
non-member is refused; a forged or replayed ``state`` is refused; logout (with its CSRF
token) ends the session; a role taken away in the bot's member cache shuts the member out
at the next request, without Discord's member endpoint read again."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from pydantic import SecretStr

from bot.settings import WebSettings
from bot.web import BoardServer, BoardSource
from bot.web.auth import LOGIN_COOKIE, SCOPES, SESSION_COOKIE, Auth
from conductor.bootstrap import bootstrap
from e2e.standin import StandIn
from smoke.runner import LAUNCH_ARGS
from store.db import Database
from tests.axe import axe_script, violations
from tests.helpers import GUILD

CHROMIUM = "/usr/bin/chromium"
#: an outer bound for each wait (a navigation, an element): each ends as soon as it is there
WAIT_MS = 60_000
MEMBER_CALLS = "/users/@me/guilds/{guild_id}/member"

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Chromium at {CHROMIUM}"),
]


@dataclass
class Cache:
    """The bot's member cache, as the board sees it: user id -> role ids."""

    members: dict[int, frozenset[int]] = field(default_factory=dict)

    def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        assert guild_id == GUILD
        return self.members.get(user_id)


@dataclass
class World:
    standin: StandIn
    cache: Cache
    base: str
    role: int
    alice: int
    bob: int

    def member_calls(self) -> int:
        return sum(1 for c in self.standin.calls if c.template == MEMBER_CALLS)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    discord = StandIn(token="bot-token")
    discord.start()
    try:
        yield discord
    finally:
        discord.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(LAUNCH_ARGS), headless=True
        )
        yield launched
        await launched.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104 - the test is of a board bound beyond loopback
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(loop_scope="module")
async def world(standin: StandIn, tmp_path: Path) -> AsyncIterator[World]:
    """The stand-in's guild with Alice (a member holding the board's role) and Bob (no
    member); the board of an empty train on 0.0.0.0, its public URL http://127.0.0.1:PORT."""

    def seed() -> tuple[int, int, int]:
        standin.create_guild(GUILD, "Studio train")
        role = standin.add_role("Board")
        alice = standin.add_user("Alice")
        standin.add_member(alice, roles=[role])
        bob = standin.add_user("Bob")
        standin.oauth_user = None
        standin.oauth_denies = False
        return role, alice, bob

    role, alice, bob = standin.call(seed)
    cache = Cache({alice: frozenset({GUILD, role})})
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'board.db'}")
    await database.create_all()
    domain = bootstrap(database=database)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    standin.call(lambda: standin.oauth_redirects.add(public + "/oauth/callback"))
    auth = Auth(
        client_id=standin.app_id,
        client_secret=SecretStr(standin.client_secret),
        public_url=public,
        guild_id=GUILD,
        role=role,
        directory=cache,
        discord_url=standin.url,
    )
    source = BoardSource(
        releases=domain.releases,
        evidence=domain.sealer.evidence,
        database=database,
        default_guild=GUILD,
        guild_name={GUILD: "Studio train"}.get,
        gateway=lambda: None,
    )
    server = BoardServer(source, WebSettings(host="0.0.0.0", port=port), auth=auth)  # noqa: S104
    assert await server.start()
    try:
        yield World(standin, cache, public, role, alice, bob)
    finally:
        await server.stop()
        await database.dispose()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context()
    made.set_default_timeout(WAIT_MS)
    try:
        yield made
    finally:
        await made.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


def as_user(world: World, user: int | None) -> None:
    world.standin.call(lambda: setattr(world.standin, "oauth_user", user))


async def cookies(context: BrowserContext) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in await context.cookies()}


async def logged_in(world: World, page: Page) -> None:
    """Alice logs in from the board's page and lands back on it."""
    as_user(world, world.alice)
    await page.goto(world.base + "/deployments")
    await page.wait_for_url(world.base + "/deployments")
    await page.locator("#board").wait_for()


async def test_logged_out_a_page_goes_to_discords_authorize_page_and_data_is_401(
    world: World, context: BrowserContext, page: Page
) -> None:
    await page.goto(world.base + "/deployments?guild=1001")
    await page.locator("#authorize").wait_for()
    url = urlsplit(page.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == world.standin.url + "/oauth2/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == str(world.standin.app_id)
    assert query["scope"] == SCOPES == "identify guilds.members.read"
    assert query["redirect_uri"] == world.base + "/oauth/callback"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256, unpadded
    assert len(query["state"]) >= 32
    held = await cookies(context)
    assert held[LOGIN_COOKIE]["value"] == query["state"]  # the state bound to this browser
    assert held[LOGIN_COOKIE]["httpOnly"] is True and held[LOGIN_COOKIE]["sameSite"] == "Lax"
    assert SESSION_COOKIE not in held

    for path in ("/deployments.json", "/deployments/board"):
        answer = await page.request.get(world.base + path, max_redirects=0)
        assert answer.status == 401, path
    assert (await page.request.get(world.base + "/healthz")).status == 200


async def test_a_member_logs_in_and_sees_the_board(
    world: World, context: BrowserContext, page: Page
) -> None:
    await logged_in(world, page)
    assert "Studio train" in await page.locator("h1").first.inner_text()
    held = await cookies(context)
    session = held[SESSION_COOKIE]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["path"] == "/" and session["secure"] is False  # http: no TLS here
    assert LOGIN_COOKIE not in held  # the state is spent
    assert "." in str(session["value"]) and len(str(session["value"])) < 300  # no token kept
    answer = await page.request.get(world.base + "/deployments.json")
    assert answer.status == 200
    assert (await answer.json())["guild"]["id"] == str(GUILD)
    # another guild's board is not this login's
    assert (await page.request.get(world.base + "/deployments.json?guild=7")).status == 404


async def test_a_non_member_is_refused(world: World, context: BrowserContext, page: Page) -> None:
    as_user(world, world.bob)
    response = await page.goto(world.base + "/deployments")
    assert response is not None and response.status == 403
    assert await page.locator("h2").text_content() == "Not a member"
    assert "Discord says you are not one" in await page.locator("#auth-message").inner_text()
    assert SESSION_COOKIE not in await cookies(context)


async def test_a_forged_or_replayed_state_is_refused(
    world: World, context: BrowserContext, page: Page
) -> None:
    # a login started here (the state cookie set), then a callback with another state
    await page.goto(world.base + "/deployments")
    await page.locator("#authorize").wait_for()
    response = await page.goto(world.base + "/oauth/callback?code=anything&state=forged")
    assert response is not None and response.status == 400
    assert "does not belong to this browser" in await page.locator("#auth-message").inner_text()
    assert SESSION_COOKIE not in await cookies(context)

    # a real login, its callback replayed: refused, the session it made unchanged
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/oauth/callback" in r.url else None)
    await logged_in(world, page)
    [callback] = callbacks
    session = (await cookies(context))[SESSION_COOKIE]["value"]
    response = await page.goto(callback)
    assert response is not None and response.status == 400
    assert (await cookies(context))[SESSION_COOKIE]["value"] == session

    # the same state with its cookie put back (a copied browser): spent, refused
    state = parse_qs(urlsplit(callback).query)["state"][0]
    await context.add_cookies([{"name": LOGIN_COOKIE, "value": state, "url": world.base}])
    response = await page.goto(callback)
    assert response is not None and response.status == 400
    assert "used already" in await page.locator("#auth-message").inner_text()


async def test_logout_ends_the_session_and_needs_its_csrf_token(
    world: World, context: BrowserContext, page: Page
) -> None:
    await logged_in(world, page)
    # a POST without the page's token (a cross-site form would be one): refused, still in
    forged = await page.request.post(world.base + "/logout", form={"csrf": "guess"})
    assert forged.status == 403
    assert SESSION_COOKIE in await cookies(context)
    assert (await page.request.get(world.base + "/deployments.json")).status == 200

    await page.goto(world.base + "/logout")
    await page.locator("#logout").click()
    await page.get_by_text("is logged out of the board").wait_for()
    assert SESSION_COOKIE not in await cookies(context)
    assert (await page.request.get(world.base + "/deployments.json")).status == 401
    as_user(world, None)
    await page.goto(world.base + "/deployments")
    await page.locator("#authorize").wait_for()


async def test_a_role_taken_away_in_the_bots_cache_shuts_the_member_out_at_once(
    world: World, context: BrowserContext, page: Page
) -> None:
    await logged_in(world, page)
    read_at_login = world.member_calls()
    assert read_at_login >= 1
    for _ in range(3):
        assert (await page.request.get(world.base + "/deployments.json")).status == 200

    world.cache.members[world.alice] = frozenset({GUILD})  # the role removed
    response = await page.goto(world.base + "/deployments")
    assert response is not None and response.status == 403
    assert "no longer holds the role" in await page.locator("#auth-message").inner_text()
    assert SESSION_COOKIE not in await cookies(context)
    assert world.member_calls() == read_at_login  # the cache, not Discord, on each request


async def test_the_board_names_the_visitor_and_goes_to_log_in_when_the_session_ends(
    world: World, context: BrowserContext, page: Page
) -> None:
    """The pages name who is logged in beside a Log out link; an open board whose session
    ends (logged out in another tab, expired) is sent to log in at its next poll, instead of
    saying "offline" for ever."""
    await logged_in(world, page)
    link = page.locator("nav.pages a.who")
    assert (await link.inner_text()).strip() == "Alice · Log out"
    assert await link.get_attribute("href") == "/logout"
    # the page polls (its first answer a 200 or 304), so the poll below is the one that fails
    await expect(page.locator("#board")).to_have_attribute(
        "data-polls", re.compile(r"[1-9]"), timeout=WAIT_MS
    )
    as_user(world, None)
    await context.clear_cookies(name=SESSION_COOKIE)
    await page.locator("#authorize").wait_for()  # the next poll's 401 sent the page to log in
    assert urlsplit(page.url).path == "/oauth2/authorize"
    as_user(world, world.alice)  # she logs in at Discord: back on the board she was reading
    await page.reload()
    await page.wait_for_url(world.base + "/deployments")
    await page.locator("#board").wait_for()


async def test_axe_finds_no_violation_on_the_login_pages(world: World, browser: Browser) -> None:
    """The refusals, the Log out page and the page after it (axe-core, zero violations)."""
    axe_script()
    checked = await browser.new_context(bypass_csp=True)
    checked.set_default_timeout(WAIT_MS)
    try:
        page = await checked.new_page()
        as_user(world, world.bob)
        response = await page.goto(world.base + "/deployments")
        assert response is not None and response.status == 403  # not a member
        assert await violations(page) == [], "not a member"
        response = await page.goto(world.base + "/oauth/callback?code=x&state=forged")
        assert response is not None and response.status == 400  # a forged state
        assert await violations(page) == [], "forged state"
        await logged_in(world, page)
        assert await violations(page) == [], "the board, logged in"
        await page.goto(world.base + "/logout")
        assert await violations(page) == [], "the Log out page"
        await page.locator("#logout").click()
        await page.get_by_text("is logged out of the board").wait_for()
        assert await violations(page) == [], "logged out"
    finally:
        await checked.close()
