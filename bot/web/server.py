"""The board's HTTP server inside the bot's process: started from ``setup_hook``, stopped in
``close``. A port it cannot take (in use, a host that does not resolve) is one error line in
the log and no board: the bot runs on, since the board is not worth losing the train for."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web

from bot.endpoint import is_loopback_host
from bot.settings import WebSettings
from bot.web.app import BOARD, BoardSource, build_app
from bot.web.snapshot import REBUILD_EVERY_S
from conductor.releases.service import Releases

if TYPE_CHECKING:
    from bot.web.auth import Auth
    from conductor.bootstrap import Conductor

log = logging.getLogger(__name__)

#: how long the in-flight requests get when the bot stops
SHUTDOWN_TIMEOUT = 2.0


#: how often Python hands the GIL between threads while the board runs in its own (s)
SWITCH_INTERVAL_S = 0.001
#: connections the kernel queues before the board accepts them (a burst of a team's tabs)
BACKLOG = 1024
#: the board's own pool: one connection for a rebuild (one at a time), one for /healthz
POOL_SIZE = 2
#: how long a board request waits for one of them, and a read for a lock, before its 503
POOL_TIMEOUT_S = 1.0
BUSY_TIMEOUT_MS = 1_000


#: how long the board's thread pauses before each request while the bot answers a command
BOT_FIRST_PAUSE_S = 0.001


class BotFirst:
    """The bot's commands before the board. The board's thread shares the GIL with the bot's
    loop, and a command makes many round trips between its loop and its database's thread,
    each of which may wait behind the board for the GIL. While a command runs
    (:meth:`command`, from the bot's loop), the board's thread pauses
    :data:`BOT_FIRST_PAUSE_S` before each request it answers, the GIL released: a flood of
    requests is answered a little slower, and the command does not wait on each of them."""

    def __init__(self, pause: Callable[[float], None] = time.sleep) -> None:
        self._busy = 0
        self._lock = threading.Lock()
        #: how the board's thread pauses (blocking, the GIL released)
        self.pause = pause

    @property
    def busy(self) -> bool:
        return self._busy > 0

    @contextlib.contextmanager
    def command(self) -> Iterator[None]:
        """While the bot answers one command (several may overlap)."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self._busy:
            # blocking on purpose: the board's own loop, in its own thread, gives way
            self.pause(BOT_FIRST_PAUSE_S)
        return await handler(request)


def board_source(
    domain: Conductor,
    *,
    default_guild: int | None,
    guild_name: Callable[[int], str | None],
    gateway: Callable[[], str | None],
    commit_url: str | None = None,
) -> BoardSource:
    """What the board reads, through a handle of its own on ``domain``'s database
    (:data:`POOL_SIZE` connections, :data:`POOL_TIMEOUT_S`): a flood of requests waits for
    the board's connections, never for the bot's commands' ones, and a locked database is a
    503 within a second or two, not a queue of requests each waiting 30 s."""
    database = domain.db.sibling(
        pool_size=POOL_SIZE, pool_timeout=POOL_TIMEOUT_S, busy_timeout_ms=BUSY_TIMEOUT_MS
    )
    return BoardSource(
        releases=Releases(database) if database is not domain.db else domain.releases,
        evidence=domain.sealer.evidence,
        database=database,
        default_guild=default_guild,
        guild_name=guild_name,
        gateway=gateway,
        owned_database=database is not domain.db,
        commit_url=commit_url,
    )


class BoardServer:
    """``/deployments`` on ``[web]``'s host and port (0: a free one, see :attr:`url`);
    ``every``: how old a guild's board may get before it is read again unasked.

    ``threaded``: the board runs on an event loop of its own, in a thread of its own (the
    bot's: :func:`board_source` gives it a database handle of its own, which only that loop
    uses). A flood of requests then costs the bot's loop nothing but its share of the GIL
    (switched every 5 ms), instead of a turn behind every request at each of its awaits."""

    def __init__(
        self,
        source: BoardSource,
        settings: WebSettings,
        *,
        every: float = REBUILD_EVERY_S,
        threaded: bool = False,
        auth: Auth | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        #: Login with Discord: required to listen anywhere but loopback
        self.auth = auth
        self.every = every
        self.threaded = threaded
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: the board's address once it listens
        self.url: str | None = None
        #: the bot's commands first (threaded: the board shares the bot's GIL)
        self.bot_first = BotFirst()

    def build(self) -> web.Application:
        """The app this server runs (a benchmark adds its timing middleware here)."""
        host = self.settings.host
        app = build_app(
            self.source, loopback=is_loopback_host(host), auth=self.auth, every=self.every
        )
        if self.threaded:
            app.middlewares.insert(0, self.bot_first.middleware)
        return app

    def changed(self, guild_id: int | None = None) -> None:
        """Something the board of ``guild_id`` shows changed (None: any guild's): its next
        request reads it afresh (the signal that refreshes the pinned board)."""
        app, loop = self._app, self._loop
        if app is None:
            return
        if loop is None:
            app[BOARD].changed(guild_id)
        else:
            with contextlib.suppress(RuntimeError):  # its loop closed: stopping
                loop.call_soon_threadsafe(app[BOARD].changed, guild_id)

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> bool:
        """Listen; False (logged, nothing raised) when the address cannot be taken."""
        if self._runner is not None:
            return True
        if not self.threaded:
            return await self._start()
        # The board's thread and the bot's loop share the GIL. Python hands it over every
        # 5 ms by default, and a command's every round trip to its database thread may wait
        # that long behind the board: at 1 ms, /release status stays within its budget while
        # a thousand requests are answered (bench/board_load.py).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                started.set_result(loop.run_until_complete(self._start()))
            except BaseException as error:
                started.set_exception(error)
                return
            if self._runner is not None:
                loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="conductor-board", daemon=True)
        self._thread.start()
        ok = await asyncio.wrap_future(started)
        if ok:
            self._loop = loop
        else:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        return ok

    async def _start(self) -> bool:
        host, port = self.settings.host, self.settings.port
        loopback = is_loopback_host(host)
        if not loopback and self.auth is None:
            log.error(
                "the /deployments board is not served on %s: beyond this machine it asks for "
                "a Discord login, which needs [web] client_id, client_secret and public_url "
                "(and CONDUCTOR_GUILD_ID); the bot runs on without it",
                host,
            )
            return False
        # No access log: the page asks for the board every two seconds.
        app = self.build()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, backlog=BACKLOG).start()
        except OSError as error:
            await runner.cleanup()
            await self._close_database()
            why = (
                "the port is already in use"
                if error.errno == errno.EADDRINUSE
                else str(error.strerror or error)
            )
            log.error(
                "the /deployments board cannot listen on %s:%s: %s. The bot runs on without "
                "it; set [web] port (CONDUCTOR_WEB_PORT) to a free port, or enabled = false",
                host,
                port,
                why,
            )
            return False
        self._runner, self._app = runner, app
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.url = f"http://{shown}:{bound_port}/deployments"
        log.info("the /deployments board is at %s", self.url)
        return True

    async def stop(self) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            await self._stop()
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stop(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)

    async def _stop(self) -> None:
        runner, self._runner, self._app = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
            await self._close_database()
            log.info("the /deployments board stopped")

    async def _close_database(self) -> None:
        if self.source.owned_database:
            await self.source.database.dispose()
