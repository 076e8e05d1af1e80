"""The session cookie's signature (tampered, expired, another key, malformed), where a login
may send the browser after it, the settings Login with Discord needs, and the logout's CSRF
and Origin checks over real HTTP (the browser flow is in ``test_login_browser``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr, ValidationError

from bot.settings import Settings, WebSettings
from bot.web.auth import SESSION_COOKIE, Auth, SessionSigner, Visitor, _local

KEY = b"k" * 32
NOW = 1_700_000_000.0


def signer(now: float = NOW, key: bytes = KEY) -> SessionSigner:
    return SessionSigner(key, clock=lambda: now)


ALICE = Visitor(user_id=42, name="Alice <b>", guild_id=1001, expires=int(NOW) + 60)


def test_a_signed_session_reads_back() -> None:
    assert signer().read(signer().sign(ALICE)) == ALICE


def test_a_tampered_session_reads_as_none() -> None:
    cookie = signer().sign(ALICE)
    body, mac = cookie.split(".")
    forged = Visitor(7, "Mallory", 1001, ALICE.expires)
    other_body = signer().sign(forged).split(".")[0]
    assert signer().read(f"{other_body}.{mac}") is None  # another payload, the old MAC
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert signer().read(f"{body}.{flipped}") is None
    assert signer(key=b"x" * 32).read(cookie) is None  # signed with another key


def test_an_expired_session_reads_as_none() -> None:
    cookie = signer().sign(ALICE)
    assert signer(now=ALICE.expires - 1).read(cookie) == ALICE
    assert signer(now=ALICE.expires).read(cookie) is None


@pytest.mark.parametrize("cookie", [None, "", "no-dot", ".", "é.é", "a" * 5000, "e30.abc"])
def test_a_malformed_session_reads_as_none(cookie: str | None) -> None:
    assert signer().read(cookie) is None


@pytest.mark.parametrize(
    ("after", "goes"),
    [
        ("/deployments?guild=1", "/deployments?guild=1"),
        ("//evil.example/x", "/deployments"),
        ("/\\evil.example", "/deployments"),
        ("https://evil.example/", "/deployments"),
        ("/logout", "/deployments"),
        (None, "/deployments"),
    ],
)
def test_a_login_sends_the_browser_back_only_to_this_board(after: str | None, goes: str) -> None:
    assert _local(after) == goes


def test_login_settings() -> None:
    assert Settings(web=WebSettings(host="127.0.0.1")).login_missing() == []
    missing = Settings(web=WebSettings(host="0.0.0.0")).login_missing()  # noqa: S104
    assert [m.split(" (")[0] for m in missing] == [
        "[web] client_id",
        "[web] client_secret",
        "[web] public_url",
        "guild_id",
    ]
    full = WebSettings(
        host="10.0.0.2",
        client_id=1,
        client_secret=SecretStr("hunter2-secret"),
        public_url="https://board.example.com/",
    )
    assert full.public_url == "https://board.example.com"
    assert Settings(guild_id=5, web=full).login_missing() == []
    assert "hunter2" not in repr(full) + str(full.client_secret)
    with pytest.raises(ValidationError, match="no query"):
        WebSettings(public_url="ftp://board.example.com")
    with pytest.raises(ValidationError, match="at least 32"):
        WebSettings(session_secret=SecretStr("short"))


@pytest.fixture
async def logout_site() -> AsyncIterator[tuple[str, Auth, str]]:
    """Only the login's middleware over one page, on 127.0.0.1; a session cookie for it."""
    auth = Auth(
        client_id=1,
        client_secret=SecretStr("secret"),
        public_url="https://board.example.com",
        guild_id=1001,
        session_secret=SecretStr("s" * 32),
    )

    async def board(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[auth.middleware])
    app.router.add_get("/deployments.json", board)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    cookie = auth.signer.sign(Visitor(42, "Alice", 1001, 2**40))
    try:
        yield f"http://127.0.0.1:{port}", auth, cookie
    finally:
        await runner.cleanup()


async def test_logout_refuses_a_foreign_origin_even_with_the_token(
    logout_site: tuple[str, Auth, str],
) -> None:
    base, auth, cookie = logout_site
    jar = {SESSION_COOKIE: cookie}
    async with aiohttp.ClientSession(cookies=jar) as http:
        assert (await http.get(base + "/deployments.json")).status == 200
        token = auth._csrf(cookie)
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            answer = await http.post(base + "/logout", data={"csrf": token}, headers=headers)
            assert answer.status == 403, headers
        answer = await http.post(
            base + "/logout", data={"csrf": token}, headers={"Origin": "https://board.example.com"}
        )
        assert answer.status == 200
        assert "Alice is logged out" in await answer.text()
        assert answer.cookies[SESSION_COOKIE].value == ""


async def test_without_a_session_data_is_401_and_a_page_is_sent_to_discord(
    logout_site: tuple[str, Auth, str],
) -> None:
    base, _, _ = logout_site
    async with aiohttp.ClientSession() as http:
        answer = await http.get(base + "/deployments.json")
        assert answer.status == 401
        assert "log in with Discord" in (await answer.json())["error"]
        answer = await http.get(
            base + "/deployments", headers={"Accept": "text/html"}, allow_redirects=False
        )
        assert answer.status == 302
        assert answer.headers["Location"].startswith("https://discord.com/oauth2/authorize?")
        set_cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        assert "Secure" in set_cookie  # the public URL is https
