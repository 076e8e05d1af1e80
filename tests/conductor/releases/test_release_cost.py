"""What a release cost and what its agents said, read from the database: the members'
handoff moves summed (the unknown counted, never zero) in ``/release status`` and the notes,
each member's line carrying its last handoff's note; on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from conductor.bootstrap import Conductor, bootstrap
from conductor.costs import cost_line
from conductor.states import HandoffOutcome
from conductor.stats import delivery_stats
from store.db import Database
from tests.helpers import (
    GUILD,
    OPERATOR,
    REVIEWERS,
    TEST_APP,
    FakeNotes,
    FakeRunner,
    handoff,
    next_message_id,
    ship,
)


@pytest.fixture
def notes() -> FakeNotes:
    return FakeNotes()


@pytest.fixture
def domain(db: Database, runner: FakeRunner, notes: FakeNotes) -> Conductor:
    return bootstrap(database=db, app=TEST_APP, runner=runner, notes=notes)


async def reviewed(domain: Conductor, *texts: str) -> None:
    """The handoffs ``texts`` in order (one submits), then two ✅."""
    requests = []
    for text in texts:
        result = await domain.handoffs.apply(handoff(text))
        assert result.outcome in (HandoffOutcome.APPLIED, HandoffOutcome.NOTED), result
        requests += [result.review.request_id] if result.review is not None else []
    [request_id] = requests
    message_id = next_message_id()
    await domain.reviews.attach_message(request_id, 77, message_id)
    for reviewer in REVIEWERS[:2]:
        await domain.reviews.record_approval(GUILD, message_id, reviewer)


CORE = (
    "handoff core → building\ntitle: Core\nbranch: feat/core\nkind: feature\nmodel: opus\n"
    "tokens: 1,000\ncost: $1.50\n\nFirst note: started.",
    "handoff core → submitted\nmodel: opus\ntokens: 2,400\ncost: $2.25\n\n"
    "Second note. With detail.",
    "handoff core → submitted\n\nThird note, after a rebase. @everyone look\nmore lines",
)
QUIET = ("handoff quiet → submitted\ntitle: Quiet\nbranch: feat/quiet\nkind: fix",)


@contextmanager
def selects(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_the_cost_and_the_last_notes_reach_the_status_and_the_notes(
    domain: Conductor, notes: FakeNotes, db: Database
) -> None:
    await reviewed(domain, *CORE)
    await reviewed(domain, *QUIET)
    await domain.releases.open(GUILD, "train", OPERATOR)
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    await domain.releases.add_task(GUILD, "quiet", OPERATOR)
    expected = (
        "💸 $3.75 · 3.4 k tokens · 2 members · 1 of 3 handoffs reported nothing "
        "(unknown, not counted as $0)"
    )
    with selects(db) as seen:
        status = await domain.releases.status(GUILD)
    assert status.active is not None and status.active.cost is not None
    assert cost_line(status.active.cost) == expected
    assert len(seen) == 4  # standing, members, dependencies, every member's handoff moves
    board = await domain.releases.board(GUILD)
    assert board.status.active is not None and board.status.active.cost is None  # not read

    await domain.releases.assemble(GUILD, OPERATOR)
    await ship(domain)
    [(_, messages, _)] = notes.posts
    lines = messages[0].splitlines()
    assert expected in lines
    assert "by model: opus $3.75 · 1 more" in lines
    core = next(line for line in lines if line.startswith("• `core`"))
    # the last handoff's note (a noted one: the task was submitted already), not the first
    assert core == "• `core` — Core · `feat/core` — “Third note, after a rebase.”"
    assert "First note" not in messages[0] and "@everyone" not in messages[0]
    quiet = next(line for line in lines if line.startswith("• `quiet`"))
    assert quiet == "• `quiet` — Quiet · `feat/quiet`"  # no note: nothing said for it
    assert lines[lines.index(core) - 1] == "**✨ Features** (1)"
    assert lines[lines.index(quiet) - 1] == "**🔧 Fixes** (1)"

    after = await domain.releases.status(GUILD)
    assert after.last_shipped is not None and after.last_shipped.cost is not None
    assert cost_line(after.last_shipped.cost) == expected
    # /release stats counts the same moves the same way: one cost, one unknown count
    [shipped] = (await delivery_stats(db, GUILD, 30)).ships
    total = after.last_shipped.cost.total
    assert (shipped.cost, shipped.cost_unknown, shipped.moves) == (
        total.cost,
        total.no_cost,
        total.units,
    )
    # the whole note stays on the task's card
    card = await domain.tasks.card(GUILD, "core")
    assert card.latest_note is not None
    assert card.latest_note.note == "Third note, after a rebase. @everyone look\nmore lines"


async def test_status_reads_the_cost_in_one_query_however_many_members(
    domain: Conductor, db: Database
) -> None:
    await domain.releases.open(GUILD, "train", OPERATOR)
    counts = []
    for n in range(3):
        slug = f"member-{n}"
        await reviewed(
            domain, f"handoff {slug} → building\ncost: $1", f"handoff {slug} → submitted"
        )
        await domain.releases.add_task(GUILD, slug, OPERATOR)
        with selects(db) as seen:
            status = await domain.releases.status(GUILD)
        counts.append(len(seen))
        assert status.active is not None and status.active.cost is not None
        assert status.active.cost.total.units == 2 * (n + 1)
    assert counts == [4, 4, 4]
