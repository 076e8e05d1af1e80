"""``conductor board``: the read-only ``/deployments`` board as a process of its own, against
the bot's database (the same config file and ``CONDUCTOR_*`` variables; ``[web]`` host and
port), for a team that puts it behind their own proxy. It reads through a pool of two
connections and notices what the bot wrote within ``--every`` seconds.

Only typer loads at import (``conductor --help`` stays quick): the board loads when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.web.auth import Auth

#: how old a guild's board may get before it is read again (the bot's changes show within it)
EVERY_DEFAULT_S = 3.0


def board(
    every: Annotated[
        float,
        typer.Option(
            "--every",
            min=0.1,
            max=3600.0,
            help="Seconds a board is kept before it is read again (the bot's changes show "
            "within it).",
        ),
    ] = EVERY_DEFAULT_S,
) -> None:
    """Serve the read-only /deployments board alone, against the bot's database.

    Reads [web] host and port (CONDUCTOR_WEB_HOST, CONDUCTOR_WEB_PORT) and the database
    (CONDUCTOR_DATABASE_URL) from the same config as `conductor run`. Run the bot with
    [web] enabled = false then, or on another port.
    """
    import asyncio  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from cli.main import _fail, load_settings  # noqa: PLC0415

    settings = load_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        ok = asyncio.run(_serve(settings, every))
    except _Refused as refused:
        _fail(f"error: {refused}", refused.code)
    except KeyboardInterrupt:
        ok = True
    if not ok:
        raise typer.Exit(1)


class _Refused(Exception):
    def __init__(self, text: str, code: int) -> None:
        super().__init__(text)
        self.code = code


async def _serve(settings: Settings, every: float) -> bool:
    import asyncio  # noqa: PLC0415
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from bot.web import BoardServer, BoardSource  # noqa: PLC0415
    from bot.web.server import BUSY_TIMEOUT_MS, POOL_SIZE, POOL_TIMEOUT_S  # noqa: PLC0415
    from conductor.bootstrap import bootstrap  # noqa: PLC0415
    from store.db import Database, SchemaNotAtHead  # noqa: PLC0415
    from store.errors import DatabaseUnavailable  # noqa: PLC0415

    auth = _login(settings)
    database = Database(
        settings.database_url,
        pool_size=POOL_SIZE,
        pool_timeout=POOL_TIMEOUT_S,
        busy_timeout_ms=BUSY_TIMEOUT_MS,
    )
    try:
        if database.path is not None and not os.path.isfile(database.path):  # noqa: ASYNC240
            raise _Refused(
                f"no database at {database.path} (CONDUCTOR_DATABASE_URL): the board reads "
                "the bot's; run `conductor db upgrade` or `conductor run` first",
                2,
            )
        try:
            await database.require_head()
        except SchemaNotAtHead as error:
            raise _Refused(str(error), 2) from None
        except DatabaseUnavailable as error:
            raise _Refused(f"{error.problem}: {error.detail}", 1) from None
        domain = bootstrap(
            database=database, app=settings.app, screenshots_dir=settings.screenshots_dir
        )
        source = BoardSource(
            releases=domain.releases,
            evidence=domain.sealer.evidence,
            database=database,
            default_guild=settings.guild_id,
            guild_name=lambda _guild: None,
            gateway=None,
            commit_url=settings.web.commit_url,
        )
        server = BoardServer(source, settings.web, every=every, auth=auth)
        if not await server.start():
            return False
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()
        return True
    finally:
        await database.dispose()


def _login(settings: Settings) -> Auth | None:
    """Beyond loopback, the same Login with Discord as the bot's board (whatever ``[web]
    enabled`` says: that switch is the bot's own board); with no member cache here, sessions
    are short and membership is read at each login. Refused (exit 2) naming what is missing."""
    from bot.endpoint import is_loopback_host  # noqa: PLC0415
    from bot.web.auth import Auth  # noqa: PLC0415

    if is_loopback_host(settings.web.host):
        return None
    served = settings.model_copy(update={"web": settings.web.model_copy(update={"enabled": True})})
    missing = served.login_missing()
    if missing:
        raise _Refused(
            f"[web] host = {settings.web.host} is not loopback, so the board asks for a "
            f"Discord login, which needs {', '.join(missing)}; set them, or keep [web] host "
            "on 127.0.0.1 behind your own proxy",
            2,
        )
    return Auth.from_settings(served, directory=None)
