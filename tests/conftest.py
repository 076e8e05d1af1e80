"""Shared fixtures: a real database per test on each backend (a SQLite file, and a fresh
database in this run's throwaway PostgreSQL cluster) and the domain built on it, and one sample
"production" app for the smoke and CLI tests; simcord's bound on a settle for every test that
drives the bot through it. The builders they share are in ``helpers``."""

from __future__ import annotations

import os
import socket
from collections import Counter
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
from tests.postgres import Cluster, Unavailable, bin_dir

# -- the backends: every test that takes a database runs on each ------------------------------

#: the backends a test that takes ``backend`` (``db_url``, ``db``, ``domain``…) runs on, each a
#: test of its own (``test_x[sqlite]``, ``test_x[postgresql]``);
#: ``@pytest.mark.backends("sqlite")`` keeps a test about SQLite itself (its file, its locks)
#: to it. ``CONDUCTOR_TEST_BACKENDS=sqlite`` runs the SQLite half alone.
BACKENDS = ("sqlite", "postgresql")


def _backends_wanted() -> tuple[str, ...]:
    wanted = os.environ.get("CONDUCTOR_TEST_BACKENDS")
    if not wanted:
        return BACKENDS
    names = tuple(name.strip() for name in wanted.split(",") if name.strip())
    unknown = set(names) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"CONDUCTOR_TEST_BACKENDS: unknown backend(s) {sorted(unknown)}")
    return names


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run this database test on these backends only (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = list(marker.args if marker is not None else BACKENDS)
    metafunc.parametrize("backend", names, indirect=True, ids=names)


def _not_run() -> dict[str, str]:
    """The backends this run leaves out, and why: not asked for, or PostgreSQL not installed
    (under ``CI`` it must be: its tests then fail, see :func:`postgres`)."""
    why: dict[str, str] = {}
    wanted = _backends_wanted()
    for name in BACKENDS:
        if name not in wanted:
            why[name] = "not asked for (CONDUCTOR_TEST_BACKENDS)"
    if "postgresql" not in why and not os.environ.get("CI"):
        try:
            bin_dir()
        except Unavailable as error:
            why["postgresql"] = str(error)
    return why


def _backend_of_item(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "backend" in callspec.params:
        return str(callspec.params["backend"])
    return "postgresql" if "postgres" in getattr(item, "fixturenames", ()) else None


def _leave_out_backends(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of a backend this run leaves out are deselected (one line in the summary
    says why), not skipped one by one."""
    not_run = _not_run()
    if not not_run:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if _backend_of_item(item) in not_run else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database this test runs on: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """This worker's PostgreSQL cluster, started at its first PostgreSQL test and removed at
    the end of the session. Where PostgreSQL is not installed its tests are left out (one
    line says so); under CI (``CI`` set) they fail instead, as they do wherever the cluster
    cannot start."""
    try:
        cluster = Cluster()
        cluster.start()
    except Unavailable as error:
        # not installed: its tests were left out, unless under CI; here it must run
        pytest.fail(f"PostgreSQL: {error}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database of the test's backend: a SQLite file in ``tmp_path``, or a
    database of its own in the PostgreSQL cluster (dropped after the test)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'conductor.db'}"
        return
    cluster: Cluster = request.getfixturevalue("postgres")
    # A test that takes ``db`` gets its tables from the cluster's template (much quicker than
    # creating them): the same tables ``Database.create_all`` makes, as it made them.
    with cluster.database(schema="db" in request.fixturenames) as url:
        yield url


def _backend_of(nodeid: str) -> str | None:
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    ids = nodeid[nodeid.rindex("[") + 1 : -1].split("-")
    return next((name for name in BACKENDS if name in ids), None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: how many tests ran on each backend, and how each ended."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in BACKENDS}
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        seen: set[str] = set()
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            name = _backend_of(nodeid)
            if name is None or nodeid in seen:
                continue
            if outcome == "passed" and getattr(report, "when", "call") != "call":
                continue
            seen.add(nodeid)
            counts[name][outcome] += 1
    not_run = _not_run()
    if not any(counts.values()) and not not_run:
        return
    parts = []
    for name in BACKENDS:
        if name in not_run:
            parts.append(f"{name} not run: {not_run[name]}")
            continue
        ended = counts[name]
        words = [f"{ended['passed']} passed"] + [
            f"{ended[outcome]} {outcome}" for outcome in sorted(ended) if outcome != "passed"
        ]
        parts.append(f"{name} {', '.join(words)}")
    terminalreporter.write_line("backends: " + "; ".join(parts))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    if not database.is_postgresql or await database.revision() is None:
        await database.create_all()  # (a PostgreSQL test database may have them already)
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of a backend this run leaves out are deselected (:func:`_leave_out_backends`).
    Every test that drives the bot through simcord (``simcord_env``) gets
    :data:`SETTLE_TIMEOUT` as its ``settle_timeout``, through simcord's own marker; a test
    that asks for more (``@pytest.mark.simcord(settle_timeout=300)``, on itself or its module)
    keeps it, and its other options with it."""
    _leave_out_backends(config, items)
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
