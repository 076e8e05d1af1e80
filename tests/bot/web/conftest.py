"""The board's fixtures: the domain with an ``[app]`` and a screenshots directory on a real
SQLite file, the board served by its real server on 127.0.0.1 (a free port), and the ships
that give it something to show, made through the real pipeline."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.settings import WebSettings
from bot.web import BoardServer, BoardSource
from conductor.bootstrap import Conductor, bootstrap
from conductor.states import RunKind
from conductor.views import ReleaseView
from smoke import SmokeResult
from store.db import Database
from tests.helpers import GUILD, OPERATOR, TEST_APP, FakeRunner, MakeReviewed, assembled

GUILD_NAME = "Studio train"
COMMIT_URL = "https://git.example.com/studio/commit/{sha}"


@dataclass
class Gateway:
    """What the bot would say about its gateway: None while connected."""

    problem: str | None = None


@dataclass
class Served:
    server: BoardServer
    gateway: Gateway
    #: the evidence root (where red seals keep their screenshots)
    shots: Path
    names: dict[int, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        assert self.server.url is not None
        return self.server.url.removesuffix("/deployments")


@contextlib.asynccontextmanager
async def serve(
    domain: Conductor,
    shots: Path,
    *,
    default_guild: int | None = GUILD,
    commit_url: str | None = COMMIT_URL,
    every: float = 0.0,
) -> AsyncIterator[Served]:
    """The board of ``domain`` on 127.0.0.1 at a free port, ``default_guild`` the configured
    guild, ``commit_url`` the ``[web]`` link to a commit; ``every``: how old its snapshot may
    get (0: read afresh at each request, as the tests write through the domain, not through
    the bot's change signal)."""
    gateway = Gateway()
    names = {GUILD: GUILD_NAME}
    source = BoardSource(
        releases=domain.releases,
        evidence=domain.sealer.evidence,
        database=domain.db,
        default_guild=default_guild,
        guild_name=names.get,
        gateway=lambda: gateway.problem,
        commit_url=commit_url,
    )
    server = BoardServer(source, WebSettings(host="127.0.0.1", port=0), every=every)
    assert await server.start()
    try:
        yield Served(server, gateway, shots, names)
    finally:
        await server.stop()


def sealed_domain(db: Database, runner: FakeRunner, shots: Path) -> Conductor:
    return bootstrap(database=db, app=TEST_APP, runner=runner, screenshots_dir=shots)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return tmp_path / "shots"


@pytest.fixture
def domain(db: Database, runner: FakeRunner, shots: Path) -> Conductor:
    """Sealed against ``TEST_APP`` by the fake runner; screenshots kept under ``shots``."""
    return sealed_domain(db, runner, shots)


@pytest.fixture
async def served(domain: Conductor, shots: Path) -> AsyncIterator[Served]:
    async with serve(domain, shots) as board:
        yield board


Ship = Callable[..., Awaitable[ReleaseView]]


def shipper(domain: Conductor, runner: FakeRunner, make_reviewed: MakeReviewed) -> Ship:
    """``await ship(name, seal=None)``: a release ``name`` with one member, assembled and
    shipped through the pipeline, sealed by ``seal`` (a result, the runner's exception, or
    the paths that fail; None: green)."""

    async def ship(
        name: str, seal: SmokeResult | Exception | dict[str, str] | None = None
    ) -> ReleaseView:
        slug = await assembled(domain, make_reviewed, name)
        if seal is not None:
            runner.then(seal)
        await domain.runs.start(RunKind.SHIP, GUILD, OPERATOR)
        return await domain.releases.get(GUILD, slug)

    return ship


@pytest.fixture
def ship(domain: Conductor, runner: FakeRunner, make_reviewed: MakeReviewed) -> Ship:
    return shipper(domain, runner, make_reviewed)
