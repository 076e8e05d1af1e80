"""A bot built, its database checked and every cog imported loads none of what only some
commands need: each is imported when it runs (the idle memory target, docs/PERFORMANCE.md)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_python

#: loaded by a seal, a migration, the web board, when each runs; never by a bot at rest
ON_USE = (
    "playwright",
    "alembic",
    "mako",
    "pygments",
    "jinja2",
    "aiohttp.web",
    "bot.web",
    "matplotlib",
)


def test_a_bot_at_rest_has_not_imported_what_only_some_commands_need(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has imported all of these long ago.
    script = f"""
import asyncio, importlib, sys
from bot.client import EXTENSIONS, create_bot
from bot.sample import sample_settings
from store.db import Database

async def main():
    url = "sqlite+aiosqlite:///{tmp_path / "idle.db"}"
    database = Database(url)
    await database.create_all()
    await database.require_head()
    bot = create_bot(sample_settings(url), database=database)
    for name in EXTENSIONS:
        importlib.import_module(name)
    await bot.close()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith({ON_USE!r})))
print(len([m for m in sys.modules if m.startswith("cogs.")]))
"""
    done = run_python(script)
    loaded, cogs = done.stdout.splitlines()
    assert loaded == "[]", loaded
    assert int(cogs) >= 9  # every cog was imported
