"""One bootstrap builds the domain: every service on one database, each adapter a parameter
with a real default."""

from __future__ import annotations

from pathlib import Path

from conductor.bootstrap import bootstrap
from smoke.on_use import PlaywrightOnUse
from tests.helpers import TEST_APP


async def test_the_defaults_are_the_real_adapters(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'defaults.db'}"
    built = bootstrap(database_url=url, app=TEST_APP)
    try:
        assert isinstance(built.sealer.runner, PlaywrightOnUse)  # nothing imported nor launched yet
        assert built.sealer.configured and built.runs.parts.notes is None
        assert str(built.db.engine.url) == url
        services = (
            built.releases, built.tasks, built.handoffs, built.reviews, built.guilds, built.locks,
        )  # fmt: skip
        assert all(s.db is built.db for s in services)
        assert built.seals is built.sealer.records and built.runs.parts.sealer is built.sealer
        assert built.runs.parts.releases is built.releases
        assert built.publisher is built.runs.parts.publisher
    finally:
        await built.close()
