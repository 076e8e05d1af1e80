"""``conductor db copy``: a team's history moved row for row, on real database files, from a
database the demo made (the real bot's train: handoffs, reviews, two releases shipped and
sealed, a re-seal) and back."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.sample import GUILD_ID
from cli.demo import script as demo
from conductor.bootstrap import bootstrap
from conductor.views import ReleaseView
from smoke.config import default_chromium
from store import migrate
from store.copy import count_rows, tables
from store.db import Database
from tests.helpers import OPERATOR, FakeRunner, clean_env, run_conductor

#: this checkout, first on the subprocess's path (the venv's editable install may point elsewhere)
ROOT = Path(__file__).resolve().parents[2]


def env_of(home: Path) -> dict[str, str]:
    return clean_env(home, PYTHONPATH=str(ROOT))


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The database ``conductor demo --keep-database`` leaves: the real bot's whole train."""
    if not Path(default_chromium()).exists() or shutil.which("bwrap") is None:
        pytest.skip("the demo needs Chromium and bubblewrap (make demo installs them)")
    root = tmp_path_factory.mktemp("demo")
    kept = root / "demo.db"
    result = run_conductor(
        root, "demo", "--keep-database", str(kept), env=env_of(root),
        timeout=demo.DEADLINE_SECONDS + 60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    yield kept


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in primary key order, as the store reads them."""

    async def read() -> dict[str, list[tuple[Any, ...]]]:
        database = Database(url)
        try:
            async with database.engine.connect() as conn:
                out = {}
                for table in tables():
                    order = list(table.primary_key.columns) or list(table.columns)
                    result = await conn.execute(select(table).order_by(*order))
                    out[table.name] = [tuple(row) for row in result]
                return out
        finally:
            await database.dispose()

    return asyncio.run(read())


def what_the_bot_shows(url: str) -> tuple[Any, ...]:
    """``/release history`` and every task's timeline, as the domain answers them."""

    async def read() -> tuple[Any, ...]:
        database = Database(url)
        domain = bootstrap(database=database, runner=FakeRunner())
        try:
            history = await domain.releases.history(GUILD_ID, 25)
            tasks = await domain.tasks.find(GUILD_ID)
            assert tasks
            timelines = {t.slug: await domain.tasks.timeline(GUILD_ID, t.slug) for t in tasks}
            cards = {t.slug: await domain.tasks.card(GUILD_ID, t.slug) for t in tasks}
            return history, timelines, cards
        finally:
            await database.dispose()

    return asyncio.run(read())


def copy(tmp_path: Path, source: str, target: str) -> Any:
    return run_conductor(tmp_path, "db", "copy", source, target, env=env_of(tmp_path))


def test_a_demos_history_copied_and_back_is_the_same_row_for_row(
    demo_database: Path, tmp_path: Path, db_url: str
) -> None:
    """From the demo's SQLite file to an empty database of each backend (PostgreSQL: SQLite
    to PostgreSQL and back), migrated by the copy; then the bot goes on there."""
    source = sqlite_url(demo_database)
    there, back = db_url, sqlite_url(tmp_path / "back.db")
    before = rows(source)
    assert before["releases"] and before["stage_events"] and before["release_seals"]

    first = copy(tmp_path, source, there)
    assert first.returncode == 0, first.stderr
    assert "the counts match" in first.stdout
    for table, count in asyncio.run(count_rows(source)).items():
        assert f"{table} " in first.stdout and f" {count:,} row" in first.stdout
    assert rows(there) == before
    assert copy(tmp_path, there, back).returncode == 0
    assert rows(back) == before
    assert what_the_bot_shows(there) == what_the_bot_shows(source)
    assert what_the_bot_shows(back) == what_the_bot_shows(source)
    assert migrate.current(there) == migrate.current(back) == migrate.head()
    # the bot goes on where the history moved: its next rows take new ids (PostgreSQL's
    # sequences were moved past the copied ones)
    opened = asyncio.run(open_release(there, "after-the-move"))
    assert opened.name == "after-the-move"
    assert len(rows(there)["releases"]) == len(before["releases"]) + 1


async def open_release(url: str, name: str) -> ReleaseView:
    database = Database(url)
    try:
        return await bootstrap(database=database, runner=FakeRunner()).releases.open(
            GUILD_ID, name, OPERATOR
        )
    finally:
        await database.dispose()


def test_a_target_with_data_or_at_another_head_is_refused_and_left_as_it_was(
    demo_database: Path, tmp_path: Path
) -> None:
    source = sqlite_url(demo_database)
    full = sqlite_url(tmp_path / "full.db")
    assert copy(tmp_path, source, full).returncode == 0
    held = rows(full)

    again = copy(tmp_path, source, full)
    assert again.returncode == 2
    [line] = again.stderr.splitlines()
    assert line.startswith("error: nothing was copied: the target already holds data: ")
    assert rows(full) == held

    older = sqlite_url(tmp_path / "older.db")
    migrate.upgrade(older)
    migrate.downgrade(older, "-1")
    refused = copy(tmp_path, source, older)
    assert refused.returncode == 2
    assert f"not {migrate.head()}: upgrade it" in refused.stderr

    same = copy(tmp_path, source, source)
    assert same.returncode == 2 and "the same database" in same.stderr
    missing = copy(tmp_path, sqlite_url(tmp_path / "nothing.db"), sqlite_url(tmp_path / "x.db"))
    assert missing.returncode == 1 and "there is no database at" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()
    (tmp_path / "empty.db").touch()  # a file, with no table in it
    empty = copy(tmp_path, sqlite_url(tmp_path / "empty.db"), sqlite_url(tmp_path / "x.db"))
    assert empty.returncode == 2 and "the source database is empty" in empty.stderr
