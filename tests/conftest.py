"""Shared fixtures: a real SQLite file per test and the domain built on it, and one sample
"production" app for the smoke and CLI tests. The builders they share are in ``helpers``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

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
