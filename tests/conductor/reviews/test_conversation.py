"""The conversation in the domain, on each backend: replies kept once, a ❌'s reason in either
order (in a batch of reactions too), and the pages read back with ties between a note and a
reply at the same instant."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from itertools import count

import pytest

from conductor.bootstrap import Conductor
from conductor.reviews.reactions import REJECT, Reaction
from conductor.states import TaskState
from conductor.views import IncomingReply
from tests.helpers import GUILD, REVIEWERS, handoff

_ids = count(80_000)
CARL, ALEX, _ = REVIEWERS


async def _submit(domain: Conductor, slug: str) -> int:
    result = await domain.handoffs.apply(handoff(f"handoff {slug} → submitted\n\nDone {slug}."))
    assert result.review is not None
    message_id = next(_ids)
    await domain.reviews.attach_message(result.review.request_id, 77, message_id)
    return message_id


def reply(to: int, text: str, *, by: int = CARL.user_id, name: str = "carl") -> IncomingReply:
    return IncomingReply(GUILD, 77, next(_ids), by, name, text, (to,))


async def test_replies_are_kept_once_and_only_on_review_requests(domain: Conductor) -> None:
    request = await _submit(domain, "feat")
    first = reply(request, "why?")
    kept = await domain.reviews.reply(first)
    assert (kept.kept, kept.task_slug, kept.kind) == (True, "feat", "reply")
    again = await domain.reviews.reply(first)
    assert (again.kept, again.duplicate) == (False, True)
    elsewhere = await domain.reviews.reply(reply(123, "hello"))
    assert (elsewhere.kept, elsewhere.reason) == (False, "not an answer to a review request")
    page = await domain.tasks.conversation(GUILD, "feat")
    assert [(e.kind, e.text) for e in page.entries] == [("note", "Done feat."), ("reply", "why?")]


async def test_a_batch_of_crosses_ties_each_reviewer_s_reply(domain: Conductor) -> None:
    first, second = await _submit(domain, "one"), await _submit(domain, "two")
    await domain.reviews.reply(reply(first, "one: flaky test"))
    await domain.reviews.reply(reply(second, "two: not mine", name="alex", by=ALEX.user_id))
    results = await asyncio.gather(
        domain.reviews.submit(Reaction(REJECT, GUILD, first, CARL)),
        domain.reviews.submit(Reaction(REJECT, GUILD, second, CARL)),
    )
    assert all(r.sent_back for r in results)
    one = await domain.tasks.card(GUILD, "one")
    two = await domain.tasks.card(GUILD, "two")
    assert one.task.state is TaskState.BUILDING and one.timeline[-1].reason == "one: flaky test"
    assert two.timeline[-1].reason is None  # alex replied, carl sent it back
    late = await domain.reviews.reply(reply(second, "two: the API changed"))
    assert late.kind == "reason"
    assert (await domain.tasks.card(GUILD, "two")).timeline[-1].reason == "two: the API changed"


async def test_a_reply_to_an_earlier_round_never_explains_this_round_s_cross(
    domain: Conductor,
) -> None:
    """Round 1 sent back with its reason; carl answers round 1's request again after round 2
    opened, then crosses round 2 without a word: round 2's move has no reason."""
    round_one = await _submit(domain, "feat")
    await domain.reviews.reply(reply(round_one, "the migration is not reversible"))
    await domain.reviews.submit(Reaction(REJECT, GUILD, round_one, CARL))
    round_two = await _submit(domain, "feat")
    late = await domain.reviews.reply(reply(round_one, "(on the old round) thanks for the fix"))
    assert (late.kept, late.kind) == (True, "reply")
    crossed = await domain.reviews.submit(Reaction(REJECT, GUILD, round_two, CARL))
    assert crossed.sent_back
    card = await domain.tasks.card(GUILD, "feat")
    reasons = [s.reason for s in card.timeline if s.to_state is TaskState.BUILDING]
    assert reasons == ["the migration is not reversible", None]
    answered = await domain.reviews.reply(reply(round_two, "the seed data is gone"))
    assert answered.kind == "reason"  # a reply to round 2's own request still explains it
    card = await domain.tasks.card(GUILD, "feat")
    reasons = [s.reason for s in card.timeline if s.to_state is TaskState.BUILDING]
    assert reasons == ["the migration is not reversible", "the seed data is gone"]


async def test_pages_read_back_every_entry_once_whatever_the_ties(
    domain: Conductor, monkeypatch: pytest.MonkeyPatch
) -> None:
    instant = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    for module in ("conductor.handoffs.apply", "conductor.reviews.conversation"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: instant)
    request = await _submit(domain, "feat")
    for i in range(7):
        await domain.reviews.reply(reply(request, f"r{i}"))
        to = "building" if i % 2 == 0 else "submitted"
        moved = await domain.handoffs.apply(handoff(f"handoff feat → {to}\n\nn{i}"))
        assert moved.error is None, moved.error
    seen: list[str] = []
    before = None
    while True:
        page = await domain.tasks.conversation(GUILD, "feat", before=before, size=3)
        seen = [e.text for e in page.entries] + seen
        before = page.before(len(page.entries))
        if before is None:
            break
    # at one instant: the notes (in arrival order), then the replies
    assert seen == ["Done feat.", *(f"n{i}" for i in range(7)), *(f"r{i}" for i in range(7))]
