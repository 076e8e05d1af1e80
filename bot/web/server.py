"""The board's HTTP server inside the bot's process: started from ``setup_hook``, stopped in
``close``. A port it cannot take (in use, a host that does not resolve) is one error line in
the log and no board: the bot runs on, since the board is not worth losing the train for."""

from __future__ import annotations

import errno
import logging

from aiohttp import web

from bot.endpoint import is_loopback_host
from bot.settings import WebSettings
from bot.web.app import BoardSource, build_app
from bot.web.auth import Auth

log = logging.getLogger(__name__)

#: how long the in-flight requests get when the bot stops
SHUTDOWN_TIMEOUT = 2.0


class BoardServer:
    """``/deployments`` on ``[web]``'s host and port (0: a free one, see :attr:`url`)."""

    def __init__(
        self, source: BoardSource, settings: WebSettings, *, auth: Auth | None = None
    ) -> None:
        self.source = source
        self.settings = settings
        #: Login with Discord: required to listen anywhere but loopback
        self.auth = auth
        self._runner: web.AppRunner | None = None
        #: the board's address once it listens
        self.url: str | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> bool:
        """Listen; False (logged, nothing raised) when the address cannot be taken."""
        if self._runner is not None:
            return True
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
        runner = web.AppRunner(
            build_app(self.source, loopback=loopback, auth=self.auth),
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            await runner.cleanup()
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
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.url = f"http://{shown}:{bound_port}/deployments"
        log.info("the /deployments board is at %s", self.url)
        return True

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("the /deployments board stopped")
