"""Shared fixtures: a real SQLite file per test, the service on top of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import count
from pathlib import Path

import pytest

from conductor.service import ReleaseService
from conductor.views import Actor, IncomingMessage, Reactor
from store.db import Database

GUILD = 1001
OPERATOR = Actor("olga", 501)
AGENT_ID = 900
REVIEWERS = [Reactor(601, "carl"), Reactor(602, "alex"), Reactor(603, "avi")]


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
def service(db: Database) -> ReleaseService:
    return ReleaseService(db, required_approvals=2)


_message_ids = count(10_000)


def handoff(
    text: str,
    *,
    author_id: int = AGENT_ID,
    author: str = "machoke",
    kind: str = "bot",
    message_id: int | None = None,
    guild_id: int = GUILD,
) -> IncomingMessage:
    return IncomingMessage(
        guild_id=guild_id,
        channel_id=42,
        message_id=message_id if message_id is not None else next(_message_ids),
        author_id=author_id,
        author_name=author,
        author_kind=kind,
        text=text,
    )


MakeReviewed = Callable[..., Awaitable[None]]


@pytest.fixture
def make_reviewed(service: ReleaseService) -> MakeReviewed:
    """Bring a task to reviewed through the real paths: a submitting handoff and two ✅."""

    async def _make(slug: str, *, depends_on: str | None = None, guild_id: int = GUILD) -> None:
        text = f"handoff {slug} → submitted\ntitle: {slug.title()}\nbranch: feat/{slug}"
        if depends_on is not None:
            text += f"\ndepends-on: {depends_on}"
        result = await service.apply_handoff(handoff(text, guild_id=guild_id))
        assert result.review is not None, result
        message_id = next(_message_ids)
        await service.attach_review_message(result.review.request_id, 77, message_id)
        for reviewer in REVIEWERS[:2]:
            await service.record_approval(guild_id, message_id, reviewer)

    return _make
