"""The board's HTTP server inside the bot's process: started from ``setup_hook``, stopped in
``close``. A port it cannot take (in use, a host that does not resolve) is one error line in
the log and no board: the bot runs on, since the board is not worth losing the train for."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.endpoint import is_loopback_host
from bot.settings import WebSettings
from bot.web.app import BOARD, BoardSource, build_app
from bot.web.snapshot import REBUILD_EVERY_S
from conductor.releases.service import Releases

if TYPE_CHECKING:
    from conductor.bootstrap import Conductor

log = logging.getLogger(__name__)

#: how long the in-flight requests get when the bot stops
SHUTDOWN_TIMEOUT = 2.0


#: the board's own pool: one connection for a rebuild (one at a time), one for /healthz
POOL_SIZE = 2
#: how long a board request waits for one of them, and a read for a lock, before its 503
POOL_TIMEOUT_S = 1.0
BUSY_TIMEOUT_MS = 1_000


def board_source(
    domain: Conductor,
    *,
    default_guild: int | None,
    guild_name: Callable[[int], str | None],
    gateway: Callable[[], str | None],
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
    )


class BoardServer:
    """``/deployments`` on ``[web]``'s host and port (0: a free one, see :attr:`url`);
    ``every``: how old a guild's board may get before it is read again unasked."""

    def __init__(
        self, source: BoardSource, settings: WebSettings, *, every: float = REBUILD_EVERY_S
    ) -> None:
        self.source = source
        self.settings = settings
        self.every = every
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        #: the board's address once it listens
        self.url: str | None = None

    def changed(self, guild_id: int | None = None) -> None:
        """Something the board of ``guild_id`` shows changed (None: any guild's): its next
        request reads it afresh (the signal that refreshes the pinned board)."""
        if self._app is not None:
            self._app[BOARD].changed(guild_id)

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> bool:
        """Listen; False (logged, nothing raised) when the address cannot be taken."""
        if self._runner is not None:
            return True
        host, port = self.settings.host, self.settings.port
        # No access log: the page asks for the board every two seconds.
        app = build_app(self.source, loopback=is_loopback_host(host), every=self.every)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
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
        runner, self._runner, self._app = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
            await self._close_database()
            log.info("the /deployments board stopped")

    async def _close_database(self) -> None:
        if self.source.owned_database:
            await self.source.database.dispose()
