"""``conductor db``: a downgrade that would drop data says what, keeps a copy, and asks (or
needs ``--yes``); a command that only reads never creates a database; a failed check names
the fix. Run for real in subprocesses, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import pty
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from store.models import Base
from tests.helpers import clean_env

HEAD = "0014_sizing_conversation"
APP_TABLES = frozenset(Base.metadata.tables)


def conductor(
    cwd: Path, *args: str, stdin: int = subprocess.DEVNULL, given: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``conductor ARGS`` in ``cwd``, stdin not a terminal unless a pty's end is given."""
    script = Path(sys.executable).with_name("conductor")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]
    return subprocess.run(  # noqa: S603 - our own console script
        [*command, *args],
        env=clean_env(cwd),
        cwd=cwd,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def live_tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {str(name) for (name,) in sql(url, query)}


def seeded(tmp_path: Path, url: str) -> None:
    """At head, two guilds configured: the data a downgrade to base would lose."""
    done = conductor(tmp_path, "db", "upgrade", "--url", url)
    assert done.returncode == 0, done.stderr
    sql(
        url,
        "INSERT INTO guild_configs (guild_id, handoff_channel_ids, updated_at) VALUES "
        "(1, '[]', CURRENT_TIMESTAMP), (2, '[]', CURRENT_TIMESTAMP)",
    )


def backups(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("*.before-downgrade-*"))


def test_a_downgrade_dropping_rows_says_what_and_refuses_without_yes(
    tmp_path: Path, db_url: str
) -> None:
    seeded(tmp_path, db_url)
    refused = conductor(tmp_path, "db", "downgrade", "-r", "base", "--url", db_url)

    assert refused.returncode == 1, refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[0] == f"warning: downgrading from {HEAD} to base drops data:"
    assert "  table guild_configs: 2 rows" in lines
    assert f"  (and {len(APP_TABLES) - 1} tables without rows)" in lines
    assert lines[-1] == (
        "error: nothing was dropped: this downgrade loses the data above; "
        "run it again with --yes to drop it"
    )
    # nothing dropped: every table there, the rows in it, the revision unchanged
    assert live_tables(db_url) >= APP_TABLES
    assert sql(db_url, "SELECT count(*) FROM guild_configs") == [(2,)]
    assert sql(db_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]

    if db_url.startswith("sqlite"):
        [backup] = backups(tmp_path)
        assert backup.name.startswith("conductor.db.before-downgrade-to-base-")
        assert f"backup: {backup} (the whole database as it is now)" in lines
        with sqlite3.connect(backup) as copy:  # a database of its own, holding the rows
            assert copy.execute("SELECT count(*) FROM guild_configs").fetchone() == (2,)
            assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
        copy.close()
    else:
        name = make_url(db_url).database
        assert backups(tmp_path) == []  # no file: the server's data is pg_dump's to copy
        [told] = [line for line in lines if "pg_dump" in line]
        assert told.startswith("no backup written (PostgreSQL): run first  pg_dump ")
        assert told.endswith(f" {name}")
        assert f"--file={name}-before-downgrade-to-base-" in told


def test_with_yes_the_downgrade_drops_them_after_the_backup(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url)
    done = conductor(tmp_path, "db", "downgrade", "-r", "base", "--yes", "--url", db_url)

    assert done.returncode == 0, done.stderr
    assert "  table guild_configs: 2 rows" in done.stderr.splitlines()
    assert "no migrations applied" in done.stdout
    assert live_tables(db_url) & APP_TABLES == set()
    if db_url.startswith("sqlite"):
        [backup] = backups(tmp_path)
        with sqlite3.connect(backup) as copy:
            assert copy.execute("SELECT count(*) FROM guild_configs").fetchone() == (2,)
        copy.close()


def test_a_downgrade_dropping_only_empty_tables_goes_ahead(tmp_path: Path, db_url: str) -> None:
    seeded(tmp_path, db_url)  # rows in guild_configs, which one step down keeps
    done = conductor(tmp_path, "db", "downgrade", "--url", db_url)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip() == f"database at 0013_shard_leases (head is {HEAD})"
    assert "task_bids" not in live_tables(db_url)
    assert backups(tmp_path) == []


def test_a_downgrade_dropping_a_column_with_values_counts_them(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'conductor.db'}"
    seeded(tmp_path, url)
    # 0011 added releases.held_over_revert; going below it drops the column and its values
    sql(
        url,
        "INSERT INTO releases (guild_id, slug, name, state, opened_by, opened_at, row_version,"
        " held_over_revert) VALUES (1, 'r1', 'r1', 'shipped', 'ada', CURRENT_TIMESTAMP, 1, 1)",
    )
    refused = conductor(tmp_path, "db", "downgrade", "-r", "0010_one_run_per_guild", "--url", url)

    assert refused.returncode == 1
    assert "  column releases.held_over_revert: 1 value" in refused.stderr.splitlines()
    assert sql(url, "SELECT count(held_over_revert) FROM releases") == [(1,)]


@pytest.mark.parametrize(("answer", "dropped"), [("n", False), ("y", True)])
def test_on_a_terminal_it_asks(tmp_path: Path, answer: str, dropped: bool) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'conductor.db'}"
    seeded(tmp_path, url)
    main, terminal = pty.openpty()
    try:
        os.write(main, f"{answer}\n".encode())  # typed ahead: read once it asks
        done = conductor(tmp_path, "db", "downgrade", "-r", "base", "--url", url, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(main)

    assert "Drop it? [y/N]" in done.stderr
    assert len(backups(tmp_path)) == 1  # written before it asked
    if dropped:
        assert done.returncode == 0, done.stderr
        assert live_tables(url) & APP_TABLES == set()
    else:
        assert done.returncode == 1
        assert done.stderr.splitlines()[-1].endswith("nothing was dropped")
        assert sql(url, "SELECT count(*) FROM guild_configs") == [(2,)]


@pytest.mark.parametrize(
    "args",
    [
        ("db", "current"),
        ("db", "check"),
        ("db", "downgrade", "-r", "base", "--yes"),
    ],
)
def test_a_command_that_reads_never_creates_the_database(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    path = tmp_path / "missing.db"
    done = conductor(tmp_path, *args, "--url", f"sqlite+aiosqlite:///{path}")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: there is no database at {path}: run `conductor db upgrade` to create it "
        "(or name the right one with --url or CONDUCTOR_DATABASE_URL)"
    ]
    assert not path.exists()
    assert list(tmp_path.glob("missing.db*")) == []


def test_a_copy_never_creates_its_source(tmp_path: Path) -> None:
    source, target = tmp_path / "missing.db", tmp_path / "target.db"
    done = conductor(
        tmp_path, "db", "copy", f"sqlite+aiosqlite:///{source}", f"sqlite+aiosqlite:///{target}"
    )
    assert done.returncode == 1
    assert f"there is no database at {source}" in done.stderr
    assert not source.exists() and not target.exists()


def test_the_default_database_is_not_created_by_a_read(tmp_path: Path) -> None:
    done = conductor(tmp_path, "db", "current")  # conductor.db in the working directory
    assert done.returncode == 1
    assert str(tmp_path / "conductor.db") in done.stderr
    assert not (tmp_path / "conductor.db").exists()


def test_a_failed_check_names_the_upgrade(tmp_path: Path, db_url: str) -> None:
    done = conductor(tmp_path, "db", "upgrade", "-r", "0013_shard_leases", "--url", db_url)
    assert done.returncode == 0, done.stderr
    checked = conductor(tmp_path, "db", "check", "--url", db_url)

    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"error: check failed: the database is at 0013_shard_leases, not at head ({HEAD}): "
        "run `conductor db upgrade`"
    ]
