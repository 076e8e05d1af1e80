"""The read-only web board: the routes, the guild a request means, the security headers.

    GET /deployments              the page (the board inside, refreshed by static/board.js)
    GET /deployments/board        the board alone, an HTML fragment (ETag; 304 when unchanged)
    GET /deployments.json         the same data as JSON
    GET /deployments/stats        the delivery metrics (``?days=``, 1 to 365, default 30)
    GET /deployments/stats.png    their chart, 900 × 450 (drawn off the event loop)
    GET /deployments/screenshots/ a failed check's screenshot, only from the evidence root
    GET /deployments/history      every release, a page at a time (see ``bot.web.pages``)
    GET /deployments/releases/ID  one release, whole (``…/live``: its body, polled)
    GET /healthz                  the bot process: gateway connected, database reachable
                                  (within 3 s, even with the database locked)

Each guild's board is served from memory (``snapshot.Snapshots``): read and rendered once, then
answered until the bot says it changed (:meth:`Board.changed`) or it is a few seconds old; the
ETag is compared before anything is read or rendered. The board reads through its own small
pool (``BoardSource.database``), never the bot's.

``?guild=ID`` picks one of the guilds with releases or tasks here; without it, the configured
guild (``CONDUCTOR_GUILD_ID``), else the first with any. Only GET and HEAD are answered:
anything else is 405, on any path, but for Login with Discord's own routes beyond loopback
(``bot.web.auth``: ``POST /logout`` with its CSRF token). Every response carries a strict Content-Security-Policy
(scripts and styles from this server's own files only), nosniff and no framing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web, web_response
from aiohttp.http_exceptions import HttpProcessingError
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from bot.charts import stats_png
from bot.endpoint import is_loopback_host
from bot.web.auth import CURRENT_VISITOR
from bot.web.model import GuildRef, board_data
from bot.web.snapshot import REBUILD_EVERY_S, Encoded, Snapshots
from conductor.errors import InvalidInput
from conductor.releases.service import Releases
from conductor.seals.evidence import Evidence
from conductor.states import BidRole
from conductor.stats import DAYS_DEFAULT, DeliveryStats, check_days, delivery_stats, duration_text
from conductor.stats import money as _money
from conductor.text import mask_credentials, one_line, seconds, utc
from store.db import Database
from store.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.web.auth import Auth

log = logging.getLogger(__name__)

#: how many of the newest releases the page reads (the active one among them)
RECENT = 12
#: how long /healthz waits for the database
PING_TIMEOUT = 3.0
#: how often the page asks for the board again, in milliseconds
REFRESH_MS = 2000
READ_METHODS = frozenset({"GET", "HEAD"})
#: nothing but this server's own files; no inline script or style, no framing, no forms
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: the server's name in every answer (not aiohttp's, nor its version)
SERVER_NAME = "conductor"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
#: the longest ``?guild=`` taken as a number (a Discord id has at most 20 digits)
GUILD_DIGITS = 20
#: the windows the stats page offers beside the one asked for
STATS_WINDOWS = (7, 30, 90, 365)
ROLE_NAMES = {BidRole.PM: "PM", BidRole.PO: "PO", BidRole.DEV: "Dev"}


@dataclass(frozen=True, slots=True)
class BoardSource:
    """What the board reads: the domain's releases (the same queries as the pinned board),
    the seals' evidence on disk, the database, and what only the bot knows. ``releases`` and
    ``database`` are the board's own handle (``Database.sibling``: a small pool of its
    own), so a flood of requests never takes a connection the bot's commands need."""

    releases: Releases
    evidence: Evidence
    database: Database
    #: the guild shown without ``?guild=`` (the configured one)
    default_guild: int | None
    #: a guild's name, when the bot knows it
    guild_name: Callable[[int], str | None]
    #: None while the gateway is connected, else what is wrong; itself None where there is
    #: no gateway (``conductor board``: the board alone)
    gateway: Callable[[], str | None] | None
    #: ``database`` is the board's own handle (:func:`bot.web.server.board_source`), closed
    #: when the server stops
    owned_database: bool = False
    #: ``[web] commit_url``: a commit's page, ``{sha}`` standing for its SHA (None: no link)
    commit_url: str | None = None


class Refused(Exception):
    """A request the board answers with ``status`` and ``text`` (both shown as they are)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _utc(value: str | None) -> str:
    return utc(datetime.fromisoformat(value)) if value else ""


def _seconds(ms: int | None) -> str:
    return seconds(ms) if ms is not None else ""


_BACKTICKED = re.compile(r"`([^`]+)`")


def _inline_code(text: str) -> Markup:
    """The domain's words mark commands with backticks (Discord's markdown): escaped first,
    then each `...` shown as code."""
    return Markup(_BACKTICKED.sub(r"<code>\1</code>", str(escape(text))))  # noqa: S704


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _links(slugs: Iterable[str]) -> Markup:
    """`` — ships: a, b`` linking to each ship's line on the stats page, once each."""
    unique = list(dict.fromkeys(slugs))
    if not unique:
        return Markup("")
    anchors = ", ".join(
        f'<a href="#ship-{escape(slug)}">{escape(slug[11:] or slug)}</a>' for slug in unique
    )
    return Markup(f' <span class="behind">— {anchors}</span>')  # noqa: S704 - escaped above


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = _utc
    # who is logged in (Login with Discord), for the pages' Log out link; None on loopback
    env.globals["visitor"] = CURRENT_VISITOR.get
    env.filters["seconds"] = _seconds
    env.filters["code"] = _inline_code
    env.filters["stamp"] = lambda at: f"{at:%Y-%m-%d %H:%M}"
    env.filters["duration"] = duration_text
    env.filters["percent"] = _percent
    env.filters["money"] = _money
    env.globals["links"] = _links
    return env


def _static_files() -> dict[str, tuple[Encoded, str]]:
    """The page's script, style and icon, read once (a fixed set: nothing else is served)."""
    files = {}
    for entry in resources.files("bot.web").joinpath("static").iterdir():
        kind = STATIC_TYPES.get("." + entry.name.rsplit(".", 1)[-1])
        if kind is not None and entry.is_file():
            files[entry.name] = (Encoded.of(entry.read_bytes()), kind)
    return files


def _answer(request: web.Request, encoded: Encoded, content_type: str) -> web.Response:
    """``encoded`` with its ETag, or 304 when the client has it already (compared before
    anything else is done)."""
    headers = {"ETag": encoded.etag, "Cache-Control": "no-cache"}
    if encoded.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=encoded.body, content_type=content_type, charset="utf-8", headers=headers
    )


class Board:
    """The routes, over one :class:`BoardSource`; each guild's board from
    :attr:`snapshots`, rebuilt when :meth:`changed` says so, or ``every`` seconds."""

    def __init__(self, source: BoardSource, *, every: float = REBUILD_EVERY_S) -> None:
        self.source = source
        self.env = templates()
        self.static = _static_files()
        self.snapshots = Snapshots(self._read, self._render, source.releases.guilds, every=every)

    def changed(self, guild_id: int | None = None) -> None:
        """Something the board of ``guild_id`` shows changed (None: any guild's)."""
        self.snapshots.changed(guild_id)

    async def _read(self, guild_id: int) -> dict[str, Any]:
        view = await self.source.releases.board(guild_id, RECENT)
        guilds = await self.snapshots.guilds()
        known = {
            *guilds,
            *(() if self.source.default_guild is None else (self.source.default_guild,)),
        }
        return board_data(view, self._ref(guild_id), tuple(self._ref(g) for g in sorted(known)))

    def _render(self, data: dict[str, Any]) -> str:
        return self.env.get_template("board.html").render(board=data)

    # -- which guild ---------------------------------------------------------------------------

    def _ref(self, guild_id: int) -> GuildRef:
        return GuildRef(guild_id, self.source.guild_name(guild_id) or f"guild {guild_id}")

    async def guild(self, request: web.Request) -> tuple[GuildRef, tuple[GuildRef, ...]]:
        """The guild the request means, and every guild the board can show."""
        known = set(await self.snapshots.guilds())
        default = self.source.default_guild
        if default is not None:
            known.add(default)
        ordered = tuple(self._ref(g) for g in sorted(known))
        raw = request.query.get("guild", "").strip()
        if not raw:
            chosen = default if default is not None else min(known, default=None)
            if chosen is None:
                raise Refused(404, "Nothing to show yet: no guild has releases or tasks here.")
            return self._ref(chosen), ordered
        if not (raw.isascii() and raw.isdigit()) or len(raw) > GUILD_DIGITS:
            raise Refused(400, "guild: expected a Discord guild id (digits only).")
        if int(raw) not in known:
            shown = ", ".join(str(g) for g in sorted(known)) or "none yet"
            raise Refused(404, f"No board for guild {raw}: the guilds here are {shown}.")
        return self._ref(int(raw)), ordered

    async def data(self, request: web.Request) -> dict[str, Any]:
        """The board the request means (its snapshot's data: not to be changed)."""
        guild, _ = await self.guild(request)
        return (await self.snapshots.board(guild.id)).data

    # -- the routes ----------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/deployments")

    async def page(self, request: web.Request) -> web.Response:
        try:
            guild, _ = await self.guild(request)
        except Refused as refused:
            html = self.env.get_template("error.html").render(message=refused.text)
            return web.Response(text=html, status=refused.status, content_type="text/html")
        snapshot = await self.snapshots.board(guild.id)
        data = snapshot.data
        html = self.env.get_template("deployments.html").render(
            board=data,
            fragment=snapshot.fragment.body.decode(),
            etag=snapshot.fragment.etag,
            source=f"/deployments/board?guild={data['guild']['id']}",
            every=REFRESH_MS,
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    async def fragment(self, request: web.Request) -> web.Response:
        try:
            guild, _ = await self.guild(request)
        except Refused as refused:
            raise _http(refused) from None
        return _answer(request, (await self.snapshots.board(guild.id)).fragment, "text/html")

    async def json(self, request: web.Request) -> web.Response:
        try:
            guild, _ = await self.guild(request)
        except Refused as refused:
            return web.json_response({"error": refused.text}, status=refused.status)
        return _answer(request, (await self.snapshots.board(guild.id)).json, "application/json")

    async def _stats(self, request: web.Request) -> tuple[GuildRef, DeliveryStats]:
        guild, _ = await self.guild(request)
        raw = request.query.get("days", "").strip() or str(DAYS_DEFAULT)
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 4:
            raise Refused(400, "days: expected a number of days, 1 to 365.")
        try:
            days = check_days(int(raw))
        except InvalidInput as error:
            raise Refused(400, str(error).replace("`", "")) from None
        return guild, await delivery_stats(self.source.database, guild.id, days)

    async def stats_page(self, request: web.Request) -> web.Response:
        """The figures as text beside the chart, each naming the ships behind it."""
        try:
            guild, stats = await self._stats(request)
        except Refused as refused:
            html = self.env.get_template("error.html").render(message=refused.text)
            return web.Response(text=html, status=refused.status, content_type="text/html")
        html = self.env.get_template("stats.html").render(
            guild=guild,
            stats=stats,
            windows=sorted({*STATS_WINDOWS, stats.days}),
            roles=ROLE_NAMES,
            alt=chart_alt(stats),
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    async def stats_chart(self, request: web.Request) -> web.Response:
        try:
            _, stats = await self._stats(request)
        except Refused as refused:
            raise _http(refused) from None
        png = await asyncio.to_thread(stats_png, stats)
        return web.Response(
            body=png, content_type="image/png", headers={"Cache-Control": "no-cache"}
        )

    async def screenshot(self, request: web.Request) -> web.StreamResponse:
        """A file under the evidence root, only a PNG name, never through a link out of it
        (:meth:`Evidence.path` decides); anything else is the same 404."""
        stored = request.match_info["path"]
        path = self.source.evidence.path(stored) if _plausible(stored) else None
        if path is None or not await asyncio.to_thread(_is_file, path):
            log.info("refused a screenshot outside the evidence: %r", stored[:200])
            raise web.HTTPNotFound(text="No such screenshot.")
        return web.FileResponse(
            path,
            headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=3600"},
        )

    async def static_file(self, request: web.Request) -> web.Response:
        found = self.static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="No such file.")
        encoded, kind = found
        return _answer(request, encoded, kind)

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the gateway is connected and the database answers; 503 naming each
        problem otherwise."""
        database = await self._database_problem()
        checks = {}
        if self.source.gateway is not None:
            gateway = self.source.gateway()
            checks["gateway"] = {"ok": gateway is None, "detail": gateway or "connected"}
        checks["database"] = {"ok": database is None, "detail": database or "reachable"}
        problems = [f"{name}: {c['detail']}" for name, c in checks.items() if not c["ok"]]
        body: dict[str, Any] = {"status": "unhealthy" if problems else "ok", "checks": checks}
        if problems:
            body["problems"] = problems
        return web.json_response(
            body, status=503 if problems else 200, headers={"Cache-Control": "no-store"}
        )

    async def _database_problem(self) -> str | None:
        """The ping, given :data:`PING_TIMEOUT`: past it the answer is given and the ping left
        to end by itself (a driver's thread stuck on a lock cannot be cancelled at once, and
        waiting for its cancellation is what made the answer late)."""
        ping = asyncio.ensure_future(self.source.database.ping())
        done, _ = await asyncio.wait({ping}, timeout=PING_TIMEOUT)
        if not done:
            ping.add_done_callback(_quiet)
            ping.cancel()
            return f"no answer within {PING_TIMEOUT:g} s"
        try:
            ping.result()
        except DatabaseUnavailable as error:
            return error.problem
        except Exception as error:
            return mask_credentials(one_line(error, 300))
        return None


#: a file name longer than this is no screenshot's (the file system's own limit is 255 bytes)
NAME_BYTES = 255
#: nor a path longer than this
PATH_CHARS = 1024


def _plausible(stored: str) -> bool:
    """Whether ``stored`` can name a file at all: a name the file system would refuse
    (ENAMETOOLONG) is no screenshot, answered 404 like any other."""
    return len(stored) <= PATH_CHARS and all(
        len(part.encode("utf-8", "surrogateescape")) <= NAME_BYTES for part in stored.split("/")
    )


def _is_file(path: Any) -> bool:
    try:
        return bool(path.is_file())
    except OSError:
        return False  # too long, a loop of links, no permission: not one to serve


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def chart_alt(stats: DeliveryStats) -> str:
    """The chart in words, for a screen reader."""
    weeks = "; ".join(
        f"week of {w.start:%b %d}: {w.deploys} deploy{'s' if w.deploys != 1 else ''}"
        + (f", {w.failures} failed" if w.failures else "")
        + (f", median lead time {duration_text(w.lead_median)}" if w.lead_median else "")
        for w in stats.weeks
    )
    return f"Deploys per week over the last {stats.days} days, with the median lead time: {weeks}."


def _http(refused: Refused) -> web.HTTPException:
    kind = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}.get(refused.status, web.HTTPNotFound)
    return kind(text=refused.text)


@web.middleware
async def read_only(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """GET and HEAD only, on every path; a database that cannot be read is a 503 that says
    so, not a traceback."""
    if request.method not in READ_METHODS:
        raise web.HTTPMethodNotAllowed(
            request.method, sorted(READ_METHODS), text="The board is read-only: GET or HEAD."
        )
    try:
        response: web.StreamResponse = await handler(request)
    except DatabaseUnavailable as error:
        raise web.HTTPServiceUnavailable(text=error.problem) from None
    return response


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Server"] = SERVER_NAME


def _name_the_server() -> None:
    """The answers aiohttp makes before the app sees a request (a malformed one's 400) carry
    aiohttp's ``Server: Python/3.x aiohttp/3.y``: its default is named here, once, as this
    server's. (The app's own answers are named in :func:`_security_headers`.)"""
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


class ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, with a malformed request (a bad request line, an invalid header,
    a line too long) written as one line instead of a traceback: anyone can send one."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            where = args[0] if args else "?"
            self.logger.warning(
                "refused a malformed request from %s: %s", where, one_line(exc_info, 200)
            )
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def same_machine_only(*, loopback: bool) -> Callable[..., Any]:
    """Bound to a loopback address, the board answers only requests that name this machine
    in their Host header: a web page elsewhere whose name an attacker points at 127.0.0.1
    (DNS rebinding) reaches the port, but says its own name, and is refused (421). Bound
    elsewhere (behind the operator's proxy), the Host is the proxy's business."""

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if loopback and not is_loopback_host(request.url.host or ""):
            raise web.HTTPMisdirectedRequest(
                text="The board answers only to this machine's names (localhost, 127.0.0.1, ::1)."
            )
        response: web.StreamResponse = await handler(request)
        return response

    return guard


#: the app's :class:`Board` (``app[BOARD]``): the server tells it what changed
BOARD = web.AppKey("board", Board)


def build_app(
    source: BoardSource,
    *,
    loopback: bool = False,
    auth: Auth | None = None,
    every: float = REBUILD_EVERY_S,
) -> web.Application:
    """The board's routes; ``loopback``: it listens on this machine only, so requests must
    name it (:func:`same_machine_only`); ``auth``: only the guild's members, logged in with
    Discord (its routes answered by its middleware, ahead of :func:`read_only`); ``every``:
    how old a board may be before it is read again without being told of a change."""
    board = Board(source, every=every)
    _name_the_server()
    guards = [same_machine_only(loopback=loopback)]
    if auth is not None:
        guards.append(auth.middleware)
    app = web.Application(
        middlewares=[*guards, read_only],
        handler_args={"logger": ProtocolLog(logging.getLogger("aiohttp.server"), {})},
    )
    app[BOARD] = board
    app.on_response_prepare.append(_security_headers)

    async def close(_app: web.Application) -> None:
        await board.snapshots.close()

    app.on_cleanup.append(close)
    app.router.add_get("/", board.root)
    app.router.add_get("/deployments", board.page)
    app.router.add_get("/deployments/board", board.fragment)
    app.router.add_get("/deployments.json", board.json)
    app.router.add_get("/deployments/stats", board.stats_page)
    app.router.add_get("/deployments/stats.png", board.stats_chart)
    app.router.add_get("/deployments/screenshots/{path:.+}", board.screenshot)
    app.router.add_get("/deployments/static/{name}", board.static_file)
    app.router.add_get("/healthz", board.healthz)
    from bot.web.pages import add_pages  # noqa: PLC0415 - pages builds on this module

    add_pages(app, board)
    return app
