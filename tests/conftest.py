"""Shared fixtures: a real SQLite file per test and the domain built on it, and one sample
"production" app for the smoke and CLI tests; simcord's bound on a settle for every test that
drives the bot through it. The builders they share are in ``helpers``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord.env
from simcord import _runtime

from conductor.bootstrap import Conductor, bootstrap
from smoke.sample_app import SampleApp, serve_in_thread
from store.db import Database
from tests.helpers import GUILD, FakeRunner, MakeReviewed, Origin, bring_to_reviewed, git


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'conductor.db'}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.create_all()
    yield database
    await database.dispose()


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def domain(db: Database, runner: FakeRunner) -> Conductor:
    """The domain as the bot builds it, with no ``[app]`` (unsealed) and nowhere for notes."""
    return bootstrap(database=db, required_approvals=2, runner=runner)


@pytest.fixture
def make_reviewed(domain: Conductor) -> MakeReviewed:
    """Bring a task to reviewed through the real paths: a submitting handoff and two ✅."""

    async def _make(slug: str, *, depends_on: str | None = None, guild_id: int = GUILD) -> None:
        await bring_to_reviewed(domain, slug, depends_on=depends_on, guild_id=guild_id)

    return _make


# -- simcord: how long a settle may take -------------------------------------------------------

#: real seconds simcord waits for the bot to settle (after an event, a command, a whole
#: ``advance_time``, a start) before it fails the test. An outer bound only: a settle returns
#: as soon as the bot is idle, so a quick machine never waits for it, and a busy one (the
#: suite on every core beside other work) is not a failure. simcord's own default is 5 s.
SETTLE_TIMEOUT = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives the bot through simcord (``simcord_env``) gets
    :data:`SETTLE_TIMEOUT` as its ``settle_timeout``, through simcord's own marker; a test
    that asks for more (``@pytest.mark.simcord(settle_timeout=300)``, on itself or its module)
    keeps it, and its other options with it."""
    for item in items:
        if "simcord_env" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("simcord")
        options = dict(marker.kwargs) if marker is not None else {}
        options["settle_timeout"] = max(float(options.get("settle_timeout", 0)), SETTLE_TIMEOUT)
        item.add_marker(pytest.mark.simcord(**options), append=False)  # the closest one


@pytest.fixture(autouse=True)
def _simcord_starts_within_the_settle_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """simcord 3.2.1 settles a bot's start (``env.start()``, ``restart_bot()``) within a fixed
    5 s, whatever ``settle_timeout`` says: here a start gets the env's ``settle_timeout`` too,
    like every other settle (still returning as soon as the bot is ready)."""
    attach = _runtime._attach_bot  # what simcord.env calls it by

    async def attach_within_the_bound(env: simcord.Env, bot: discord.Client) -> None:
        settle = env._settle_internal

        async def settle_within_the_bound(
            *,
            timeout: float | None = None,  # noqa: ASYNC109 - simcord's own signature
            **kwargs: Any,
        ) -> None:
            if timeout is not None:
                timeout = max(timeout, env.settle_timeout)
            await settle(timeout=timeout, **kwargs)

        with monkeypatch.context() as patched:
            patched.setattr(env, "_settle_internal", settle_within_the_bound)
            await attach(env, bot)

    monkeypatch.setattr(simcord.env, "_attach_bot", attach_within_the_bound)


# -- the sample production app ----------------------------------------------------------------


@pytest.fixture(scope="session")
def _sample_server() -> Iterator[SampleApp]:
    with serve_in_thread() as app:
        yield app


@pytest.fixture
def sample_app(_sample_server: SampleApp) -> Iterator[SampleApp]:
    """The shared sample app, healthy and with its counters at zero (and left that way)."""
    app = _sample_server
    app.heal()
    app.reset_counters()
    app.slow_seconds = 5.0
    yield app
    app.heal()
    app.reset_counters()
    app.slow_seconds = 5.0


@pytest.fixture
def dead_url() -> str:
    """A base URL where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- git: the agents' origin and Conductor's clone ----------------------------------------------


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    """A bare origin with ``main``, and an agent's checkout that pushes branches to it."""
    return Origin(tmp_path)


@pytest.fixture
def clone(origin: Origin, tmp_path: Path) -> Path:
    """Conductor's clone of the origin."""
    path = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(origin.bare), str(path))
    return path
