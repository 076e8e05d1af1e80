"""Login with Discord for the board served anywhere but loopback (OAuth2's authorization code
grant with PKCE, the scopes ``identify`` and ``guilds.members.read`` only).

    GET  /login?next=/path    to Discord's authorize page (a single-use ``state`` and PKCE)
    GET  /oauth/callback      back from Discord: the state checked, the code exchanged, the
                              guild membership (and ``[web] role``) read, the session cookie set
    GET  /logout              a page with the Log out button (its form carries a CSRF token)
    POST /logout              clears the session

Every other request needs the session cookie (signed with HMAC-SHA256: the user's id, name,
guild and expiry; no Discord token is kept): a page without one is sent to log in (302), the
board's fragment, JSON and images are 401. While the bot runs, each request checks the
visitor against the bot's own member cache (:class:`MemberDirectory`), so a role taken away
or a member who left is shut out at once, and Discord's member endpoint is read only at
login. Without a directory (the board in a process with no gateway) a session lasts
:data:`SESSION_TTL_UNCACHED_S` and membership is read again at the next login.

Only ``/healthz`` and the page's static files are served without a login.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import SecretStr

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

#: Discord itself (``[discord_api_url]``, a stand-in on this machine, replaces it in tests)
DISCORD = "https://discord.com"
API_PATH = "/api/v10"
AUTHORIZE_PATH = "/oauth2/authorize"
#: exactly these: who you are, and your membership (roles) in the board's guild
SCOPES = "identify guilds.members.read"
LOGIN, CALLBACK, LOGOUT = "/login", "/oauth/callback", "/logout"
SESSION_COOKIE, LOGIN_COOKIE = "conductor_session", "conductor_login"
#: a session's life when the bot's member cache vouches for every request, and without it
SESSION_TTL_S = 12 * 3600
SESSION_TTL_UNCACHED_S = 3600
#: how long a started login may take at Discord
LOGIN_TTL_S = 600
#: logins started and not finished, kept at most (the oldest dropped first)
PENDING_MAX = 10_000
#: each call to Discord, and how often a 429 is waited out (Retry-After up to the cap)
HTTP_TIMEOUT_S = 10.0
RETRIES, RETRY_CAP_S = 3, 5.0
#: what a session cookie may weigh before it is not even read
COOKIE_MAX = 2048
#: paths served without a login: the health check and the pages' own files
PUBLIC_PATHS = frozenset({"/healthz"})
PUBLIC_PREFIXES = ("/deployments/static/",)
#: what a browser cannot be sent to log in from: it is fetched by the page, not navigated to
NOT_PAGES = ("/deployments/board", "/deployments.json", "/deployments/stats.png")
#: the logout page posts a form: the only response whose CSP allows one (to this server)
FORM_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class MembersUnknown(Exception):
    """The directory cannot tell yet (the bot is connecting, or the guild is on a shard
    another process holds): the request is answered 503, not refused."""


class MemberDirectory(Protocol):
    """Who is in a guild, as the bot's gateway keeps it (``ConductorBot.member_roles``)."""

    def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        """The member's role ids; None when they are not a member. Raises
        :class:`MembersUnknown` when it cannot tell."""
        ...


@dataclass(frozen=True, slots=True)
class Visitor:
    """A logged-in member, as the session cookie says."""

    user_id: int
    name: str
    guild_id: int
    #: Unix time, in seconds
    expires: int


#: the logged-in visitor of a request the middleware let through
VISITOR = web.RequestKey("visitor", Visitor)
#: the visitor of the request being answered (set by the middleware in the request's own task):
#: the pages' templates name them beside a Log out link (``visitor()``, see ``bot.web.app``)
CURRENT_VISITOR: ContextVar[Visitor | None] = ContextVar("conductor_visitor", default=None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """The session cookie: ``base64url(payload).base64url(HMAC-SHA256(payload))``; anything
    tampered with, malformed or expired reads as no session."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(key, b"conductor session v1", hashlib.sha256).digest()
        self._clock = clock

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def sign(self, visitor: Visitor) -> str:
        payload = {
            "u": str(visitor.user_id),
            "n": visitor.name,
            "g": str(visitor.guild_id),
            "e": visitor.expires,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def read(self, cookie: str | None) -> Visitor | None:
        if not cookie or len(cookie) > COOKIE_MAX or not cookie.isascii():
            return None
        body, dot, mac = cookie.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            payload = json.loads(_unb64(body))
            visitor = Visitor(
                int(payload["u"]), str(payload["n"]), int(payload["g"]), int(payload["e"])
            )
        except (ValueError, KeyError, TypeError):
            return None
        return visitor if visitor.expires > self._clock() else None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A login sent to Discord: its PKCE verifier and where to go after it."""

    verifier: str
    after: str
    expires: float


class LoginRefused(Exception):
    """A login or a request refused with ``status`` and a sentence saying why."""

    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


def _local(path: str | None) -> str:
    """Where a login may send the browser after it: a path on this board, nothing else."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/deployments"
    if path.startswith((LOGIN, CALLBACK, LOGOUT)) or any(c in path for c in "\r\n\\"):
        return "/deployments"
    return path


class Auth:
    """The login: the middleware (:meth:`middleware`) and the routes it answers itself."""

    def __init__(
        self,
        *,
        client_id: int,
        client_secret: SecretStr,
        public_url: str,
        guild_id: int,
        role: int | None = None,
        session_secret: SecretStr | None = None,
        directory: MemberDirectory | None = None,
        discord_url: str = DISCORD,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.public_url = public_url.rstrip("/")
        self.redirect_uri = self.public_url + CALLBACK
        self.guild_id = guild_id
        self.role = role
        self.directory = directory
        self.discord_url = discord_url.rstrip("/")
        self.secure = urlsplit(self.public_url).scheme == "https"
        key = (
            session_secret.get_secret_value().encode()
            if session_secret is not None
            else secrets.token_bytes(32)
        )
        self.signer = SessionSigner(key, clock)
        self._csrf_key = hmac.new(key, b"conductor logout v1", hashlib.sha256).digest()
        self._clock = clock
        self.ttl = SESSION_TTL_S if directory is not None else SESSION_TTL_UNCACHED_S
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self.env = Environment(
            loader=PackageLoader("bot.web", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, directory: MemberDirectory | None) -> Auth:
        """From ``[web]`` (checked first by :meth:`Settings.login_missing`); Discord's
        address from ``CONDUCTOR_DISCORD_API_URL`` when a stand-in is set."""
        web_ = settings.web
        client_id, secret, url = web_.client_id, web_.client_secret, web_.public_url
        if client_id is None or secret is None or url is None or settings.guild_id is None:
            missing = settings.login_missing() or ["[web] client_id, client_secret, public_url"]
            raise ValueError("Login with Discord needs " + ", ".join(missing))
        return cls(
            client_id=client_id,
            client_secret=secret,
            public_url=url,
            guild_id=settings.guild_id,
            role=web_.role,
            session_secret=web_.session_secret,
            directory=directory,
            discord_url=settings.discord_api_url or DISCORD,
        )

    # -- the pages -------------------------------------------------------------------------

    def page(
        self,
        status: int,
        title: str,
        message: str,
        *,
        link: tuple[str, str] | None = ("/login", "Log in with Discord"),
        csrf: str | None = None,
    ) -> web.Response:
        html = self.env.get_template("auth.html").render(
            title=title, message=message, link=link, csrf=csrf, problem=status >= 400
        )
        headers = {"Cache-Control": "no-store"}
        if csrf is not None:
            # the form may post only here; and its POST carries this origin (under the
            # board's no-referrer policy Chromium would send ``Origin: null``)
            headers["Content-Security-Policy"] = FORM_CSP
            headers["Referrer-Policy"] = "same-origin"
        return web.Response(text=html, status=status, content_type="text/html", headers=headers)

    def _refused(self, refused: LoginRefused) -> web.Response:
        response = self.page(refused.status, refused.title, refused.text)
        response.del_cookie(LOGIN_COOKIE, path="/")
        return response

    def _cookie(self, response: web.StreamResponse, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    # -- the middleware --------------------------------------------------------------------

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]
    ) -> web.StreamResponse:
        path = request.path
        if path == LOGIN:
            return self.start(request.query.get("next"))
        if path == CALLBACK:
            return await self.callback(request)
        if path == LOGOUT:
            return await self.logout(request)
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            response: web.StreamResponse = await handler(request)
            return response
        visitor = self.signer.read(request.cookies.get(SESSION_COOKIE))
        if visitor is None or visitor.guild_id != self.guild_id:
            if self._is_page(request):
                return self.start(request.path_qs)
            return self._unauthorized(path)
        try:
            self._still_admitted(visitor)
        except LoginRefused as refused:
            answer = self.page(refused.status, refused.title, refused.text)
            if refused.status == 403:
                answer.del_cookie(SESSION_COOKIE, path="/")
            return answer
        wanted = request.query.get("guild", "").strip()
        if wanted and wanted != str(self.guild_id):
            raise web.HTTPNotFound(text=f"This board shows only guild {self.guild_id}.")
        request[VISITOR] = visitor
        token = CURRENT_VISITOR.set(visitor)
        try:
            response = await handler(request)
        finally:
            CURRENT_VISITOR.reset(token)
        return response

    @staticmethod
    def _is_page(request: web.Request) -> bool:
        if request.method not in ("GET", "HEAD") or request.path.startswith(NOT_PAGES):
            return False
        if request.path.startswith("/deployments/screenshots/"):
            return False
        accept = request.headers.get("Accept", "")
        return not accept or "text/html" in accept or "*/*" in accept

    @staticmethod
    def _unauthorized(path: str) -> web.Response:
        text = "Log in first: open /deployments in a browser to log in with Discord."
        if path.endswith(".json"):
            return web.json_response({"error": text}, status=401)
        return web.Response(status=401, text=text)

    def _still_admitted(self, visitor: Visitor) -> None:
        """The bot's member cache, on every request: a member who left or lost the role is
        out at once. Without a directory, the login's check holds until the session ends."""
        if self.directory is None:
            return
        try:
            roles = self.directory.member_roles(self.guild_id, visitor.user_id)
        except MembersUnknown:
            raise LoginRefused(
                503,
                "Not yet",
                "The bot is still reading the server's members; reload in a moment.",
            ) from None
        if roles is None:
            raise LoginRefused(
                403, "Not a member", f"{visitor.name} is no longer a member of this server."
            )
        if self.role is not None and self.role not in roles:
            raise LoginRefused(
                403,
                "Not allowed",
                f"{visitor.name} no longer holds the role this board is open to "
                f"(id {self.role}); ask a server admin for it, then log in again.",
            )

    # -- the login -------------------------------------------------------------------------

    def start(self, after: str | None) -> web.Response:
        """To Discord's authorize page, with a fresh state (also in a cookie of this browser)
        and PKCE's challenge; the verifier stays here."""
        now = self._clock()
        while self._pending and (
            len(self._pending) >= PENDING_MAX or next(iter(self._pending.values())).expires < now
        ):
            self._pending.popitem(last=False)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        challenge = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
        self._pending[state] = _Pending(verifier, _local(after), now + LOGIN_TTL_S)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": str(self.client_id),
                "scope": SCOPES,
                "redirect_uri": self.redirect_uri,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        response = web.Response(
            status=302,
            headers={
                "Location": f"{self.discord_url}{AUTHORIZE_PATH}?{query}",
                "Cache-Control": "no-store",
            },
        )
        self._cookie(response, LOGIN_COOKIE, state, LOGIN_TTL_S)
        return response

    async def callback(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        try:
            pending = self._take_state(request)
            if "error" in request.query:
                said = request.query.get("error_description") or request.query["error"]
                raise LoginRefused(
                    403, "Login cancelled", f"Discord did not log you in: {said[:200]}."
                )
            code = request.query.get("code", "")
            if not code:
                raise LoginRefused(400, "Login failed", "Discord sent no code back. Log in again.")
            visitor = await self._admit(code, pending.verifier)
        except LoginRefused as refused:
            return self._refused(refused)
        log.info("board login: user %s", visitor.user_id)
        response = web.Response(
            status=302, headers={"Location": pending.after, "Cache-Control": "no-store"}
        )
        response.del_cookie(LOGIN_COOKIE, path="/")
        self._cookie(response, SESSION_COOKIE, self.signer.sign(visitor), self.ttl)
        return response

    def _take_state(self, request: web.Request) -> _Pending:
        """The state Discord sent back must be the one this browser's cookie holds (compared
        in constant time) and a login started here and not finished: each is used once."""
        sent = request.query.get("state", "")
        held = request.cookies.get(LOGIN_COOKIE, "")
        if not sent or not held or not hmac.compare_digest(sent.encode(), held.encode()):
            raise LoginRefused(
                400,
                "Login refused",
                "This login does not belong to this browser (its state does not match the one "
                "the login started with). Nothing was done; log in again from the board.",
            )
        pending = self._pending.pop(sent, None)
        if pending is None or pending.expires < self._clock():
            raise LoginRefused(
                400,
                "Login refused",
                "This login was used already or is older than 10 minutes. Log in again.",
            )
        return pending

    async def _admit(self, code: str, verifier: str) -> Visitor:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                token = await self._exchange(http, code, verifier)
                user = await self._get(http, "/users/@me", token)
                member = await self._get(http, f"/users/@me/guilds/{self.guild_id}/member", token)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("board login: Discord could not be reached: %s", type(error).__name__)
            raise LoginRefused(
                502,
                "Discord unreachable",
                "Discord could not be reached to finish the login; try again in a moment.",
            ) from None
        name = str(user.get("global_name") or user.get("username") or "someone")[:100]
        user_id = int(user["id"])
        if member is None:
            raise LoginRefused(
                403,
                "Not a member",
                f"{name}, this board is only for the members of its Discord server, and "
                "Discord says you are not one.",
            )
        roles = {int(r) for r in member.get("roles", [])}
        if self.role is not None and self.role not in roles:
            raise LoginRefused(
                403,
                "Not allowed",
                f"{name}, this board is open only to holders of one role (id {self.role}) "
                "in its Discord server; ask a server admin for it.",
            )
        return Visitor(user_id, name, self.guild_id, int(self._clock()) + self.ttl)

    async def _exchange(self, http: aiohttp.ClientSession, code: str, verifier: str) -> str:
        form = {
            "client_id": str(self.client_id),
            "client_secret": self._client_secret.get_secret_value(),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        status, body = await self._call(http, "POST", "/oauth2/token", data=form)
        token = body.get("access_token") if isinstance(body, dict) else None
        if status == 200 and isinstance(token, str):
            return token
        error = body.get("error", status) if isinstance(body, dict) else status
        if error == "invalid_client":
            log.error("board login: Discord refused [web] client_id or client_secret")
            raise LoginRefused(
                502,
                "Login misconfigured",
                "Discord refused this board's client id or secret; an operator must fix "
                "[web] client_id and client_secret.",
            )
        raise LoginRefused(
            400, "Login failed", f"Discord refused the login's code ({error}). Log in again."
        )

    async def _get(self, http: aiohttp.ClientSession, path: str, token: str) -> Any:
        status, body = await self._call(
            http, "GET", path, headers={"Authorization": f"Bearer {token}"}
        )
        if status == 404 and path.endswith("/member"):
            return None
        if status != 200 or not isinstance(body, dict):
            raise LoginRefused(
                502, "Login failed", f"Discord answered {status} to {path}; log in again."
            )
        return body

    async def _call(
        self, http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any]:
        """One call to Discord's API, a 429 waited out (as long as it asks, up to a cap)."""
        url = self.discord_url + API_PATH + path
        for attempt in range(RETRIES):
            async with http.request(method, url, **kwargs) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status != 429 or attempt == RETRIES - 1:
                    return response.status, body
                wait = body.get("retry_after", 1.0) if isinstance(body, dict) else 1.0
            await asyncio.sleep(min(float(wait), RETRY_CAP_S))
        raise AssertionError("unreachable")

    # -- logout ----------------------------------------------------------------------------

    def _csrf(self, cookie: str) -> str:
        return _b64(hmac.new(self._csrf_key, cookie.encode(), hashlib.sha256).digest())

    async def logout(self, request: web.Request) -> web.Response:
        """GET: the page with the button (its form carries a token bound to the session);
        POST: the session ends, once the token matches and the Origin (if sent) is ours."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        visitor = self.signer.read(cookie)
        if request.method in ("GET", "HEAD"):
            if visitor is None:
                return self.page(200, "Logged out", "You are not logged in.")
            return self.page(
                200,
                "Log out",
                f"Logged in as {visitor.name}.",
                link=("/deployments", "Back to the board"),
                csrf=self._csrf(cookie),
            )
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        origin = request.headers.get("Origin")
        form = await request.post()
        sent = str(form.get("csrf", ""))
        expected = self._csrf(cookie) if visitor is not None else ""
        fetched_from = request.headers.get("Sec-Fetch-Site", "same-origin")
        wrong_origin = (origin is not None and origin != _origin(self.public_url)) or (
            fetched_from not in ("same-origin", "none")
        )
        if visitor is None:
            answer = self.page(200, "Logged out", "You are not logged in.")
        elif wrong_origin or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            return self.page(
                403,
                "Not logged out",
                "This logout did not come from the board's own page; nothing was done. "
                "Open /logout and press the button.",
                link=("/logout", "Log out"),
            )
        else:
            answer = self.page(200, "Logged out", f"{visitor.name} is logged out of the board.")
        answer.del_cookie(SESSION_COOKIE, path="/")
        return answer


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
