"""Group commit: a burst through HandoffQueue ends exactly where one-at-a-time does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from conductor.bootstrap import Conductor, bootstrap
from conductor.handoffs.apply import HandoffApplier, HandoffQueue
from conductor.states import HandoffOutcome, TaskState
from conductor.views import HandoffResult
from store.db import Database
from store.models import HandoffMessage, ReviewRequest, StageEvent
from tests.helpers import GUILD, FakeRunner, handoff


def _script(n_tasks: int) -> list[str]:
    """Every task through designed → building → submitted, with chatter, a malformed message,
    a refused move and a progress note mixed in."""
    texts = []
    for i in range(n_tasks):
        texts += [
            f"handoff t{i} → designed\ntitle: Task {i}\ndepends-on: t{i - 1 if i else 'x'}",
            "lgtm",
            f"handoff t{i} → building\nmodel: m\ntokens: 1,000\ncost: $0.10",
            f"handoff t{i} → reviewed",
            f"handoff t{i} → building\n\nhalf way",
            f"handoff t{i} → submitted\nbranch: feat/t{i}\nbogus line",
            f"handoff t{i} → submitted\nbranch: feat/t{i}",
        ]
    return texts


async def _snapshot(domain: Conductor, db: Database) -> tuple[object, ...]:
    tasks = await domain.tasks.find(GUILD)
    async with db.read() as session:
        outcomes = (
            await session.execute(
                select(
                    HandoffMessage.message_id, HandoffMessage.outcome, HandoffMessage.error
                ).order_by(HandoffMessage.message_id)
            )
        ).all()
        events = await session.scalar(select(func.count()).select_from(StageEvent))
        reviews = await session.scalar(select(func.count()).select_from(ReviewRequest))
    return (
        sorted((t.slug, t.state, t.branch, tuple(d.slug for d in t.dependencies)) for t in tasks),
        [tuple(row) for row in outcomes],
        events,
        reviews,
    )


async def test_a_burst_ends_where_one_at_a_time_does(tmp_path: Path) -> None:
    texts = _script(30)
    dbs = [Database(f"sqlite+aiosqlite:///{tmp_path / name}.db") for name in ("one", "burst")]
    for db in dbs:
        await db.create_all()
    one, burst = (bootstrap(database=db, runner=FakeRunner()) for db in dbs)
    messages = [handoff(text, message_id=5_000 + i) for i, text in enumerate(texts)]
    sequential = [await one.handoffs.apply(m) for m in messages]
    queued = await asyncio.gather(*(burst.handoffs.submit(m) for m in messages))
    assert [(r.outcome, r.error) for r in queued] == [(r.outcome, r.error) for r in sequential]
    assert await _snapshot(one, dbs[0]) == await _snapshot(burst, dbs[1])
    assert {t.state for t in await burst.tasks.find(GUILD)} == {TaskState.SUBMITTED}
    for db in dbs:
        await db.dispose()


async def test_a_batch_applies_in_arrival_order(db: Database) -> None:
    applier = HandoffApplier(db, required_approvals=2)
    results = await applier.apply(
        [
            handoff("handoff a → designed", message_id=1),
            handoff("handoff a → building", message_id=2),
            handoff("handoff a → designed", message_id=3),  # no way back from building
            handoff("handoff a → building", message_id=2),  # the same message again, same batch
            handoff("handoff a → submitted", message_id=4),
        ]
    )
    assert [getattr(r, "outcome", r) for r in results] == [
        HandoffOutcome.APPLIED,
        HandoffOutcome.APPLIED,
        HandoffOutcome.REJECTED,
        HandoffOutcome.APPLIED,
        HandoffOutcome.APPLIED,
    ]
    assert [getattr(r, "duplicate", None) for r in results] == [False, False, False, True, False]
    final = results[-1]
    assert isinstance(final, HandoffResult) and final.review is not None and final.review.round == 1
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(HandoffMessage))
    assert count == 4


async def test_one_broken_message_does_not_take_its_batch_down(db: Database) -> None:
    """A failure that is not a refusal (a bug upstream: an author kind the CHECK constraint
    refuses) makes the batch fall back to one message at a time; only that message fails."""
    applier = HandoffApplier(db, required_approvals=2)
    good = handoff("handoff ok → building", message_id=11)
    bad = handoff("handoff bad → building", message_id=12, kind="martian")  # type: ignore[arg-type]  # the database refuses it
    later = handoff("handoff ok → submitted", message_id=13)
    results = await applier.apply([good, bad, later])
    assert isinstance(results[0], HandoffResult) and results[0].outcome is HandoffOutcome.APPLIED
    assert isinstance(results[1], Exception)
    assert isinstance(results[2], HandoffResult) and results[2].outcome is HandoffOutcome.APPLIED
    async with db.read() as session:
        rows = await session.execute(select(HandoffMessage.message_id, HandoffMessage.outcome))
        stored = {row.message_id: row.outcome for row in rows}
    assert stored == {11: HandoffOutcome.APPLIED, 13: HandoffOutcome.APPLIED}


async def test_queue_errors_reach_only_their_caller(db: Database) -> None:
    queue = HandoffQueue(HandoffApplier(db, required_approvals=2))
    ok, broken = await asyncio.gather(
        queue.submit(handoff("handoff q → building", message_id=21)),
        queue.submit(handoff("handoff r → building", message_id=22, kind="martian")),  # type: ignore[arg-type]  # the database refuses it
        return_exceptions=True,
    )
    assert isinstance(ok, HandoffResult) and ok.outcome is HandoffOutcome.APPLIED
    assert isinstance(broken, Exception)
    await queue.drain()
