"""Not a benchmark: draws ``docs/release-stats.png``, the chart of ``/release stats`` and
``/deployments/stats``, from the sixty seeded days the tests work out by hand
(``tests/stats_history.py``), as of their fixed ``NOW``.

    .venv/bin/python -m bench.stats_picture [--out docs] [--days 60]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bot.charts import stats_png
from conductor.stats import delivery_stats
from store.db import Database
from tests.stats_history import GUILD, NOW, seed_history


async def picture(out: Path, days: int) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(f"sqlite+aiosqlite:///{scratch}/stats.db")
        try:
            await db.create_all()
            await seed_history(db)
            stats = await delivery_stats(db, GUILD, days, now=NOW)
        finally:
            await db.dispose()
    path = out / "release-stats.png"
    path.write_bytes(await asyncio.to_thread(stats_png, stats))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    print(asyncio.run(picture(args.out, args.days)))


if __name__ == "__main__":
    main()
