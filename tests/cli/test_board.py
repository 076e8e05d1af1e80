"""``conductor board``: the board as a process of its own, on a real SQLite file the test
writes through the domain (as the bot would, from another process)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp

from conductor.bootstrap import bootstrap
from store.db import Database
from tests.helpers import GUILD, OPERATOR, ROOT, clean_env, run_conductor

#: an outer bound on each wait (each returns as soon as what it waits for happens)
PATIENCE_S = 60.0
LISTENING = re.compile(r"the /deployments board is at (http://\S+)/deployments")


async def test_the_board_alone_shows_what_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "conductor.db"
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    await db.create_all()
    env = clean_env(
        tmp_path,
        CONDUCTOR_DATABASE_URL=url,
        CONDUCTOR_WEB_PORT="0",
        CONDUCTOR_GUILD_ID=str(GUILD),
        PYTHONPATH=str(ROOT),
    )
    board = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "board",
        "--every",
        "0.5",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert board.stderr is not None
    try:
        base = None
        deadline = time.monotonic() + PATIENCE_S
        while base is None:
            line = await asyncio.wait_for(board.stderr.readline(), deadline - time.monotonic())
            assert line, "conductor board ended before it listened"
            found = LISTENING.search(line.decode())
            base = found.group(1) if found else None
        async with aiohttp.ClientSession() as http:

            async def active() -> str | None:
                async with http.get(base + "/deployments.json") as response:
                    assert response.status == 200, await response.text()
                    shown = json.loads(await response.read())["active"]
                    return shown["name"] if shown else None

            assert await active() is None
            domain = bootstrap(database=db)
            await domain.releases.open(GUILD, "from-the-bot", OPERATOR)
            written = time.monotonic()
            while await active() != "from-the-bot":
                assert time.monotonic() - written < PATIENCE_S, "never shown"
                await asyncio.sleep(0.1)
            async with http.get(base + "/healthz") as response:
                health = json.loads(await response.read())
            # no gateway in this process: only the database is checked
            assert response.status == 200 and set(health["checks"]) == {"database"}
        board.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(board.wait(), PATIENCE_S) == 0
        rest = (await board.stderr.read()).decode()
        assert "Traceback" not in rest, rest
    finally:
        if board.returncode is None:
            board.kill()
            await board.wait()
        await db.dispose()


def test_the_board_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    result = run_conductor(
        tmp_path,
        "board",
        env=clean_env(tmp_path, CONDUCTOR_DATABASE_URL=f"sqlite+aiosqlite:///{path}"),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: no database at {path} (CONDUCTOR_DATABASE_URL): the board reads the bot's; "
        "run `conductor db upgrade` or `conductor run` first"
    )
    assert not path.exists()


def test_the_board_beyond_loopback_refuses_to_start_without_its_login(tmp_path: Path) -> None:
    """Even with the bot's own board switched off (``[web] enabled = false``, as a team running
    ``conductor board`` sets it), a board beyond loopback asks for Login with Discord."""
    path = tmp_path / "missing.db"
    result = run_conductor(
        tmp_path,
        "board",
        env=clean_env(
            tmp_path,
            CONDUCTOR_DATABASE_URL=f"sqlite+aiosqlite:///{path}",
            CONDUCTOR_WEB_HOST="0.0.0.0",  # noqa: S104 - refused before it binds
            CONDUCTOR_WEB_ENABLED="false",
            CONDUCTOR_WEB_CLIENT_ID="123456789012345678",
        ),
    )
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip()
    assert error.startswith("error: [web] host = 0.0.0.0 is not loopback"), error
    assert "[web] client_secret (CONDUCTOR_WEB_CLIENT_SECRET)" in error
    assert "[web] public_url (CONDUCTOR_WEB_PUBLIC_URL)" in error
    assert "client_id" not in error.split("needs", 1)[1]  # given, so not named missing
    assert not path.exists()
