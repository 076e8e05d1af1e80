"""Applying handoffs through the service: raw first, idempotent, precise refusals."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from conductor.bootstrap import Conductor
from conductor.states import HandoffOutcome, TaskState
from store.db import Database
from store.models import HandoffMessage, StageEvent, Task
from tests.helpers import GUILD, handoff

FULL = """handoff release-model → submitted
title: Release model + task links
branch: feat/release-model
kind: feature
depends-on: deploy-foundation, task-board
model: claude-opus-4-8
tokens: 52,276,348
cost: $33.96
shape: backend

Release model foundation (singleton + task links + state machine). 795/0/0 green."""


async def _counts(db: Database) -> tuple[int, int, int]:
    async with db.read() as session:
        return (
            await session.scalar(select(func.count()).select_from(HandoffMessage)) or 0,
            await session.scalar(select(func.count()).select_from(Task)) or 0,
            await session.scalar(select(func.count()).select_from(StageEvent)) or 0,
        )


async def test_first_handoff_creates_the_task_with_everything(domain: Conductor) -> None:
    result = await domain.handoffs.apply(handoff(FULL, author="Machoke"))
    assert result.outcome is HandoffOutcome.APPLIED
    assert result.moved_from is TaskState.CREATED
    assert result.task is not None
    task = result.task
    assert (task.slug, task.title, task.kind, task.branch, task.state) == (
        "release-model",
        "Release model + task links",
        "feature",
        "feat/release-model",
        TaskState.SUBMITTED,
    )
    assert [(d.slug, d.state) for d in task.dependencies] == [
        ("deploy-foundation", None),
        ("task-board", None),
    ]
    card = await domain.tasks.card(GUILD, "release-model")
    assert card.metadata == {"shape": "backend"}
    assert card.latest_note is not None
    assert card.latest_note.note.startswith("Release model foundation")
    assert card.latest_note.to_state is TaskState.SUBMITTED
    [event] = card.timeline
    assert (event.from_state, event.to_state, event.actor) == (
        TaskState.CREATED,
        TaskState.SUBMITTED,
        "Machoke",
    )
    assert (event.model, event.tokens, event.cost) == (
        "claude-opus-4-8",
        52_276_348,
        Decimal("33.96"),
    )


async def test_the_same_message_twice_changes_nothing(domain: Conductor, db: Database) -> None:
    message = handoff(FULL, message_id=555)
    first = await domain.handoffs.apply(message)
    before = await _counts(db)
    second = await domain.handoffs.apply(message)
    assert first.duplicate is False
    assert (second.duplicate, second.outcome) == (True, HandoffOutcome.APPLIED)
    assert await _counts(db) == before == (1, 1, 1)


async def test_malformed_handoff_is_kept_raw_with_the_reason(
    domain: Conductor, db: Database
) -> None:
    text = "handoff x → submitted\ntitle: ok\nthis line has no colon"
    result = await domain.handoffs.apply(handoff(text, message_id=777))
    assert result.outcome is HandoffOutcome.REJECTED
    assert result.error is not None and result.error.startswith("line 3:")
    async with db.read() as session:
        stored = await session.scalar(
            select(HandoffMessage).where(HandoffMessage.message_id == 777)
        )
    assert stored is not None
    assert (stored.text, stored.outcome, stored.error) == (
        text,
        HandoffOutcome.REJECTED,
        result.error,
    )
    assert await _counts(db) == (1, 0, 0)
    again = await domain.handoffs.apply(handoff(text, message_id=777))
    assert (again.duplicate, again.error) == (True, result.error)


async def test_chatter_is_stored_and_ignored(domain: Conductor, db: Database) -> None:
    result = await domain.handoffs.apply(handoff("lgtm, shipping after lunch", kind="user"))
    assert result.outcome is HandoffOutcome.IGNORED
    assert await _counts(db) == (1, 0, 0)


async def test_moves_a_handoff_may_not_make(domain: Conductor, db: Database) -> None:
    await domain.handoffs.apply(handoff("handoff t → building"))
    cases = {
        "handoff t → reviewed": "Task `t` is building; a handoff can't move it to reviewed: "
        "reviewed is reached by teammates' ✅ approvals, never by a handoff.",
        "handoff t → shipped": "Task `t` is building; a handoff can't move it to shipped: "
        "a task ships only when its release ships.",
        "handoff t → designed": "Task `t` is building; it can't move to designed "
        "(from building it can move to: submitted).",
        "handoff t → created": "Task `t` is building; a handoff can't move it to created: "
        "a task can't go back to created.",
    }
    for text, reason in cases.items():
        result = await domain.handoffs.apply(handoff(text))
        assert (result.outcome, result.error) == (HandoffOutcome.REJECTED, reason)
    assert (await domain.tasks.card(GUILD, "t")).task.state is TaskState.BUILDING
    # A refused move leaves no trace but the raw message: fields of the refused handoff are not applied.
    result = await domain.handoffs.apply(handoff("handoff t → reviewed\ntitle: sneaky"))
    assert result.outcome is HandoffOutcome.REJECTED
    assert (await domain.tasks.card(GUILD, "t")).task.title == "t"


async def test_refused_first_handoff_creates_no_task(domain: Conductor, db: Database) -> None:
    result = await domain.handoffs.apply(handoff("handoff newbie → reviewed"))
    assert result.outcome is HandoffOutcome.REJECTED
    assert await _counts(db) == (1, 0, 0)


async def test_same_state_handoff_is_a_note(domain: Conductor) -> None:
    await domain.handoffs.apply(handoff("handoff t → building\nbranch: feat/t"))
    result = await domain.handoffs.apply(
        handoff("handoff t → building\nbranch: feat/t2\n\nhalf way there")
    )
    assert result.outcome is HandoffOutcome.NOTED
    card = await domain.tasks.card(GUILD, "t")
    assert (card.task.branch, len(card.timeline), [n.note for n in card.notes]) == (
        "feat/t2",
        1,
        ["half way there"],
    )


async def test_forward_steps_record_time_in_previous_stage(domain: Conductor) -> None:
    for state in ("designed", "building", "submitted"):
        await domain.handoffs.apply(handoff(f"handoff t → {state}\nmodel: m-{state}\ntokens: 10"))
    timeline = await domain.tasks.timeline(GUILD, "t")
    assert [(e.from_state.value, e.to_state.value, e.model) for e in timeline] == [
        ("created", "designed", "m-designed"),
        ("designed", "building", "m-building"),
        ("building", "submitted", "m-submitted"),
    ]
    assert all(e.seconds_in_previous is not None and e.seconds_in_previous >= 0 for e in timeline)
    assert timeline[1].at >= timeline[0].at


async def test_dependencies_are_replaced_only_when_given(domain: Conductor) -> None:
    await domain.handoffs.apply(handoff("handoff t → designed\ndepends-on: a, b"))
    await domain.handoffs.apply(handoff("handoff t → building"))
    assert [d.slug for d in (await domain.tasks.card(GUILD, "t")).task.dependencies] == ["a", "b"]
    await domain.handoffs.apply(handoff("handoff t → submitted\ndepends-on: none"))
    assert (await domain.tasks.card(GUILD, "t")).task.dependencies == ()


async def test_guilds_are_separate(domain: Conductor) -> None:
    await domain.handoffs.apply(handoff("handoff t → building", guild_id=GUILD))
    other = await domain.handoffs.apply(handoff("handoff t → submitted", guild_id=GUILD + 1))
    assert other.moved_from is TaskState.CREATED
    assert (await domain.tasks.card(GUILD, "t")).task.state is TaskState.BUILDING


async def test_a_lone_surrogate_is_stored_raw_not_lost(domain: Conductor, db: Database) -> None:
    # Discord can deliver text no database can store as it is: it is kept, escaped.
    chatter = await domain.handoffs.apply(handoff("chatter \udfff from a broken client"))
    moved = await domain.handoffs.apply(
        handoff(
            "handoff lone → building\ntitle: Fix \ud800 parsing\n\nnote \udc00", author="a\udfff"
        )
    )
    assert chatter.error is not None and moved.error is None
    async with db.read() as session:
        rows = (
            await session.scalars(select(HandoffMessage).order_by(HandoffMessage.message_id))
        ).all()
    assert [r.text for r in rows] == [
        "chatter \\udfff from a broken client",
        "handoff lone → building\ntitle: Fix \\ud800 parsing\n\nnote \\udc00",
    ]
    assert rows[1].author_name == "a\\udfff"
    card = await domain.tasks.card(GUILD, "lone")
    assert card.task.title == "Fix \\ud800 parsing"
