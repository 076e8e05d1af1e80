"""The runs' world, shared by the ship and rollback tests: a health server on 127.0.0.1, a
notes sink that records, where the deploy command writes down what it saw, and a builder of
the domain on the clone with a ``[deploy]`` table from its keywords."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.releases.runs.driver import Checkpoint
from store.db import Database
from tests.helpers import TEST_APP, Build, FakeNotes, FakeRunner, HealthServer, outbox


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    async with HealthServer() as server:
        yield server


@pytest.fixture
def notes() -> FakeNotes:
    return FakeNotes()


@pytest.fixture
def seen(tmp_path: Path) -> Path:
    """Where the deploy command writes what it saw, one JSON line per run (in the outbox the
    sandboxed deploy is granted)."""
    return outbox(tmp_path) / "deploys.jsonl"


@pytest.fixture
def build(
    db: Database,
    runner: FakeRunner,
    notes: FakeNotes,
    clone: Path,
    health: HealthServer,
    tmp_path: Path,
) -> Build:
    """The domain on the clone (``with_git=False``: none), the health server, the fake runner
    and sink, with a ``[deploy]`` table from the keywords given."""

    def _build(
        *, with_git: bool = True, checkpoint: Checkpoint | None = None, **deploy: Any
    ) -> Conductor:
        return bootstrap(
            database=db,
            checkpoint=checkpoint,
            runner=runner,
            notes=notes,
            app={**TEST_APP, "production_url": health.url},
            git={"path": str(clone)} if with_git else None,
            deploy={
                "health_timeout": 60,  # an outer bound: healthy at the first check
                "health_interval": 0.05,
                "log_dir": str(tmp_path / "deploy-logs"),
                "write": [str(outbox(tmp_path))],
                **deploy,
            },
        )

    return _build
