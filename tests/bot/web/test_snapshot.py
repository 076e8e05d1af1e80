"""The board served from its snapshot, through a pool of its own, over real HTTP on 127.0.0.1:
a 304 reads nothing, the bot's change signal (and only it, or the snapshot's age) makes it read
again, concurrent requests read once, the bot's pool is never touched, a locked database is a
quick answer; and the smaller things: a screenshot name too long for the file system, a
malformed request, the Server header."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from sqlalchemy import event

from bot.settings import WebSettings
from bot.web import BoardServer
from bot.web.server import board_source
from conductor.bootstrap import Conductor
from store.db import Database
from tests.helpers import GUILD, OPERATOR

#: an outer bound on any wait below (the machine is busy; each returns as soon as it can)
PATIENCE_S = 30.0


@contextlib.asynccontextmanager
async def own_board(
    domain: Conductor, *, every: float = 3600.0, threaded: bool = False
) -> AsyncIterator[BoardServer]:
    """The board as the bot serves it: its own pool (``board_source``), ``every`` long."""
    source = board_source(
        domain, default_guild=GUILD, guild_name=lambda _g: "Studio", gateway=lambda: None
    )
    server = BoardServer(
        source, WebSettings(host="127.0.0.1", port=0), every=every, threaded=threaded
    )
    assert await server.start()
    try:
        yield server
    finally:
        await server.stop()


def base(server: BoardServer) -> str:
    assert server.url is not None
    return server.url.removesuffix("/deployments")


async def fetch(
    server: BoardServer, path: str, **kwargs: Any
) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(base(server) + path, **kwargs) as r:
        return r.status, CIMultiDict(r.headers), await r.read()


async def active_name(server: BoardServer) -> str | None:
    status, _, body = await fetch(server, "/deployments.json")
    assert status == 200, body
    import json  # noqa: PLC0415

    active = json.loads(body)["active"]
    return active["name"] if active else None


@contextlib.contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)


async def test_a_304_reads_and_renders_nothing(domain: Conductor) -> None:
    await domain.releases.open(GUILD, "r1", OPERATOR)
    async with own_board(domain) as server:
        status, headers, _ = await fetch(server, "/deployments.json")
        assert status == 200
        tag = headers["ETag"]
        with statements(server.source.database) as seen:
            t0 = time.perf_counter()
            for _ in range(20):
                status, again, body = await fetch(
                    server, "/deployments.json", headers={"If-None-Match": tag}
                )
                assert status == 304 and body == b"" and again["ETag"] == tag
            took = time.perf_counter() - t0
        assert seen == []  # not one statement
        assert took < PATIENCE_S


async def test_the_bot_s_signal_rebuilds_the_board(domain: Conductor) -> None:
    async with own_board(domain) as server:
        assert await active_name(server) is None
        await domain.releases.open(GUILD, "r1", OPERATOR)
        # kept an hour: unchanged until the bot says so
        assert await active_name(server) is None
        server.changed(GUILD)
        assert await active_name(server) == "r1"


async def test_the_bot_s_signal_reaches_a_board_in_its_own_thread(domain: Conductor) -> None:
    async with own_board(domain, threaded=True) as server:
        assert await active_name(server) is None
        await domain.releases.open(GUILD, "r1", OPERATOR)
        server.changed(GUILD)
        deadline = time.monotonic() + PATIENCE_S
        while await active_name(server) != "r1":  # the signal crosses threads: soon after
            assert time.monotonic() < deadline, "the board never showed r1"
            await asyncio.sleep(0.05)


async def test_an_old_snapshot_is_read_again_unasked(domain: Conductor) -> None:
    async with own_board(domain, every=0.3) as server:
        assert await active_name(server) is None
        await domain.releases.open(GUILD, "r1", OPERATOR)  # as another process would
        deadline = time.monotonic() + PATIENCE_S
        while await active_name(server) != "r1":
            assert time.monotonic() < deadline, "the board never showed r1"
            await asyncio.sleep(0.1)


async def test_concurrent_requests_for_a_stale_board_read_it_once(domain: Conductor) -> None:
    async with own_board(domain) as server:
        releases = server.source.releases
        assert releases is not domain.releases
        reads = 0
        board = releases.board

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            await asyncio.sleep(0.2)  # a slow read: every request below arrives during it
            return await board(*args, **kwargs)

        releases.board = counted  # type: ignore[method-assign]
        await domain.releases.open(GUILD, "r1", OPERATOR)
        server.changed(GUILD)
        names = await asyncio.gather(*(active_name(server) for _ in range(50)))
        assert names == ["r1"] * 50
        assert reads == 1


async def test_the_board_never_takes_a_connection_of_the_bot_s_pool(domain: Conductor) -> None:
    await domain.releases.open(GUILD, "r1", OPERATOR)
    taken = 0

    def checkout(*_: Any) -> None:
        nonlocal taken
        taken += 1

    async with own_board(domain, every=0.0) as server:
        database = server.source.database
        assert database is not domain.db
        assert database.engine.pool.size() == 2  # type: ignore[attr-defined]
        event.listen(domain.db.engine.sync_engine, "checkout", checkout)
        try:
            async with aiohttp.ClientSession() as http:

                async def one(path: str) -> int:
                    async with http.get(base(server) + path) as response:
                        await response.read()
                        return response.status

                paths = ("/deployments.json", "/deployments/board", "/deployments", "/healthz")
                codes = await asyncio.gather(*(one(paths[i % 4]) for i in range(200)))
        finally:
            event.remove(domain.db.engine.sync_engine, "checkout", checkout)
        assert set(codes) == {200}
        assert taken == 0


@contextlib.asynccontextmanager
async def locked_by_another_process(*databases: Database) -> AsyncIterator[None]:
    """A second, real SQLite connection holding the file EXCLUSIVE (its locking mode: not
    even a WAL reader gets in) until the block ends. Taking it needs every other connection
    closed: ``databases``' pools are emptied first (they open new ones, which meet the lock)."""
    for database in databases:
        await database.dispose()
    assert databases[0].path is not None
    holder = sqlite3.connect(databases[0].path, isolation_level=None, timeout=PATIENCE_S)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("CREATE TABLE held (x)")
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.backends("sqlite")
async def test_a_locked_database_is_a_quick_answer(domain: Conductor) -> None:
    assert domain.db.path is not None
    await domain.releases.open(GUILD, "r1", OPERATOR)
    async with own_board(domain, every=0.0) as server:
        async with locked_by_another_process(domain.db, server.source.database):
            t0 = time.perf_counter()
            status, _, body = await fetch(server, "/healthz")
            took = time.perf_counter() - t0
            assert status == 503 and b"busy" in body, body
            assert took < 3.0, f"/healthz took {took:.1f} s"
            t0 = time.perf_counter()
            status, _, body = await fetch(server, "/deployments.json")
            took = time.perf_counter() - t0
            # never read yet: nothing to fall back on, so a 503 that says why
            assert status == 503, body
            assert b"database is busy" in body, body
            assert took < 3.0, f"the board took {took:.1f} s"
        assert await active_name(server) == "r1"
        async with locked_by_another_process(domain.db, server.source.database):
            # read once: the board shows what it read last
            assert await active_name(server) == "r1"


@pytest.mark.backends("sqlite")
async def test_healthz_answers_within_3_s_even_through_the_bot_s_own_busy_timeout(
    domain: Conductor,
) -> None:
    """Through a handle that waits 10 s for a lock (the bot's), the answer still comes at 3 s:
    the ping is left to end by itself."""
    from bot.web.app import BoardSource  # noqa: PLC0415

    assert domain.db.path is not None
    source = BoardSource(
        releases=domain.releases,
        evidence=domain.sealer.evidence,
        database=domain.db,
        default_guild=GUILD,
        guild_name=lambda _g: None,
        gateway=lambda: None,
    )
    server = BoardServer(source, WebSettings(host="127.0.0.1", port=0))
    assert await server.start()
    try:
        async with locked_by_another_process(domain.db):
            t0 = time.perf_counter()
            status, _, body = await fetch(server, "/healthz")
            took = time.perf_counter() - t0
        assert status == 503 and b"no answer within 3 s" in body, body
        assert took < 5.0, f"/healthz took {took:.1f} s"
    finally:
        await server.stop()


# -- the smaller things ---------------------------------------------------------------------


@pytest.mark.backends("sqlite")
async def test_a_screenshot_name_too_long_for_the_file_system_is_a_404(
    domain: Conductor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with own_board(domain) as server:
        for name in ("a" * 300 + ".png", "x/" + "b" * 300 + ".png", "c/" * 600 + "d.png"):
            status, _, body = await fetch(server, "/deployments/screenshots/" + name)
            assert status == 404, (name[:20], status)
            assert body == b"No such screenshot."
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def raw(server: BoardServer, request: bytes) -> bytes:
    """``request`` sent as it is on a socket of its own; everything answered until closed."""
    assert server.url is not None
    port = int(server.url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


MALFORMED = (
    b"GET / HTTP/1.1 trailing\r\nHost: localhost\r\n\r\n",  # a bad request line
    b"GET /deployments HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n",  # invalid name
    b"GET /deployments HTTP/1.1\r\nHost: localhost\r\nX-Long: " + b"y" * 20_000 + b"\r\n\r\n",
)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("request_bytes", MALFORMED, ids=["line", "header", "too-long"])
async def test_a_malformed_request_is_one_line_in_the_log_not_a_traceback(
    domain: Conductor, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    async with own_board(domain) as server:
        caplog.clear()
        answer = await asyncio.to_thread(raw, server, request_bytes)
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.split(" ", 2)[1] == "400", head
    assert "\r\nServer: conductor\r\n" in head + "\r\n", head
    assert "aiohttp" not in head.lower()
    logged = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    [record] = logged
    assert record.exc_info is None and record.levelno == logging.WARNING
    assert record.getMessage().startswith("refused a malformed request from 127.0.0.1: ")
    assert "\n" not in record.getMessage()


@pytest.mark.backends("sqlite")
async def test_the_server_header_names_conductor_not_aiohttp(domain: Conductor) -> None:
    async with own_board(domain) as server:
        for path in ("/deployments", "/deployments.json", "/healthz", "/nowhere"):
            _, headers, _ = await fetch(server, path)
            assert headers["Server"] == "conductor", (path, headers.get("Server"))


async def test_a_board_in_its_own_thread_gives_way_while_the_bot_answers_a_command(
    domain: Conductor,
) -> None:
    """While a command runs, the board's thread pauses (the GIL released) before each request
    it answers; with no command running it never pauses."""
    import bot.web.server as server_module  # noqa: PLC0415

    pauses: list[tuple[str, float]] = []
    real_sleep = time.sleep

    def recorded(seconds: float) -> None:
        pauses.append((threading.current_thread().name, seconds))
        real_sleep(seconds)

    async with own_board(domain, threaded=True) as server:
        server.bot_first.pause = recorded
        for _ in range(3):
            assert (await fetch(server, "/deployments.json"))[0] == 200
        assert pauses == []
        with server.bot_first.command():
            assert server.bot_first.busy
            for _ in range(3):
                assert (await fetch(server, "/deployments.json"))[0] == 200
        assert not server.bot_first.busy
        assert pauses == [("conductor-board", server_module.BOT_FIRST_PAUSE_S)] * 3
        assert (await fetch(server, "/deployments.json"))[0] == 200
        assert len(pauses) == 3


async def test_every_application_command_runs_as_the_bot_s_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ConductorTree`` runs each slash command and autocomplete inside
    ``BotFirst.command`` (the one method discord.py runs them all through)."""
    import discord  # noqa: PLC0415
    from discord import app_commands  # noqa: PLC0415

    from bot.tree import ConductorTree  # noqa: PLC0415
    from bot.web.server import BotFirst  # noqa: PLC0415

    seen: list[bool] = []
    first = BotFirst()

    async def called(self: object, interaction: object) -> None:
        seen.append(first.busy)

    monkeypatch.setattr(app_commands.CommandTree, "_call", called)
    client = discord.Client(intents=discord.Intents.none())
    tree = ConductorTree(client)
    await tree._call(object())  # type: ignore[arg-type]  # no board: runs as it is
    client.board_server = type("Board", (), {"bot_first": first})()  # type: ignore[attr-defined]
    await tree._call(object())  # type: ignore[arg-type]
    assert seen == [False, True]
    assert not first.busy
    await client.close()
