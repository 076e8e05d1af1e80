"""Not a benchmark: regenerates ``docs/task-card-sized.png``, the ``/task show`` card of a
sized task after its release shipped.

    .venv/bin/python -m bench.card_picture [--out docs]

Builds the task through the domain on a fresh SQLite file, as the bot would: the agent's
handoffs (the developer's bid in ``size: L``, a later ``size: XL`` kept as a re-bid), the PM's
and the PO's sealed bids, a reviewer's reply and ❌ (the reason it went back), the second
round's two ✅, then a release opened, assembled and shipped. The moves' times are then spread
over an afternoon (the domain stamps them with the wall clock), the card is rendered by the
cog's own ``task_embed`` and photographed in Chromium as a Discord message
(:mod:`bench.discord_html`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from playwright.async_api import async_playwright
from sqlalchemy import select, update

from bench.discord_html import message_page
from cogs.task._render import task_embed
from conductor.bootstrap import Conductor, bootstrap
from conductor.states import BidRole, RunKind, Size
from conductor.views import Actor, IncomingMessage, IncomingReply, Reactor
from smoke.runner import LAUNCH_ARGS
from store.db import Database
from store.models import HandoffMessage, StageEvent, Task, TaskComment

GUILD = 1001
HANDOFFS, REVIEWS = 42, 77
CHROMIUM = "/usr/bin/chromium"
SLUG = "production-smoke-seal"
OLGA = Actor("olga", 501)
CARL, ALEX = Reactor(601, "carl"), Reactor(602, "alex")
_ids = count(10_000)

HEAD = f"title: Production smoke seal\nbranch: feat/{SLUG}\nkind: feature\nmodel: claude-opus-4-8"
HANDOFF_TEXTS = (
    f"handoff {SLUG} → designed\n{HEAD}\nsize: L\ntokens: 1,608,969\ncost: $1.82\n\n"
    "Read-only smoke suite after the flip: Playwright in Chromium, no writes.",
    f"handoff {SLUG} → building\n{HEAD}\ntokens: 2,104,332\ncost: $2.41\n\n"
    "Plan agreed: the guard refuses every non-GET request the pages make.",
    f"handoff {SLUG} → submitted\n{HEAD}\nsize: XL\ntokens: 52,276,348\ncost: $33.96\n\n"
    "Seal green or red on the release, posted in its thread, with screenshots of failures.",
    f"handoff {SLUG} → submitted\n{HEAD}\ntokens: 6,424,114\ncost: $7.37\n\n"
    "Screenshots are kept per seal and linked from the alert. 812/0/0 green.",
)
#: minutes after the start of each move, in the order they were made
MOVE_MINUTES = (0, 8, 97, 128, 151, 196, 214, 236)


def handoff(text: str) -> IncomingMessage:
    return IncomingMessage(GUILD, HANDOFFS, next(_ids), 900, "machoke", "bot", text)


async def build(domain: Conductor) -> None:
    """The task from its first handoff to its ship."""
    first = await domain.handoffs.apply(handoff(HANDOFF_TEXTS[0]))
    assert first.error is None, first
    await domain.sizing.bid(GUILD, SLUG, BidRole.PM, Size.M, Actor("alex", 602))
    await domain.sizing.bid(GUILD, SLUG, BidRole.PO, Size.L, Actor("avi", 603))
    await domain.handoffs.apply(handoff(HANDOFF_TEXTS[1]))
    submitted = await domain.handoffs.apply(handoff(HANDOFF_TEXTS[2]))
    assert submitted.review is not None, submitted
    request = next(_ids)
    await domain.reviews.attach_message(submitted.review.request_id, REVIEWS, request)
    await domain.reviews.reply(
        IncomingReply(
            GUILD, REVIEWS, next(_ids), CARL.user_id, CARL.name,
            "The alert needs the screenshots, not only the summary: an operator on a phone "
            "decides from them.",
            (request,),
        )
    )  # fmt: skip
    await domain.reviews.request_changes(GUILD, request, CARL)
    again = await domain.handoffs.apply(handoff(HANDOFF_TEXTS[3]))
    assert again.review is not None, again
    request = next(_ids)
    await domain.reviews.attach_message(again.review.request_id, REVIEWS, request)
    for reviewer in (CARL, ALEX):
        await domain.reviews.record_approval(GUILD, request, reviewer)
    await domain.releases.open(GUILD, "smoke-seal", OLGA)
    await domain.releases.add_task(GUILD, SLUG, OLGA)
    await domain.assembly.assemble(GUILD, OLGA)
    await domain.runs.start(RunKind.SHIP, GUILD, OLGA)


async def spread(domain: Conductor, start: datetime) -> None:
    """The moves, notes and replies at the times of :data:`MOVE_MINUTES` (made within a
    second, they would all read "0s")."""
    async with domain.db.write() as session:
        events = (await session.scalars(select(StageEvent).order_by(StageEvent.id))).all()
        assert len(events) == len(MOVE_MINUTES), [e.to_state for e in events]
        previous = None
        for event, minutes in zip(events, MOVE_MINUTES, strict=True):
            event.at = start + timedelta(minutes=minutes)
            if previous is not None:
                event.seconds_in_previous = (event.at - previous).total_seconds()
            previous = event.at
            if event.handoff_message_id is not None:
                await session.execute(
                    update(HandoffMessage)
                    .where(HandoffMessage.message_id == event.handoff_message_id)
                    .values(received_at=event.at)
                )
        # the re-bid came with the second submission, carl's reply just before his ❌
        for kind, at in (("rebid", events[2].at), ("reason", events[3].at - timedelta(minutes=3))):
            await session.execute(update(TaskComment).where(TaskComment.kind == kind).values(at=at))
        await session.execute(update(Task).values(state_since=previous))


async def photograph(page_html: str, target: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=list(LAUNCH_ARGS))
        try:
            context = await browser.new_context(
                viewport={"width": 760, "height": 400}, device_scale_factor=1
            )
            page = await context.new_page()
            await page.set_content(page_html)
            await page.locator(".message").screenshot(path=str(target))
        finally:
            await browser.close()


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="card-") as tmp:
        database = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'conductor.db'}")
        await database.create_all()
        domain = bootstrap(database=database)
        try:
            await build(domain)
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            await spread(domain, now - timedelta(minutes=MOVE_MINUTES[-1] + 45))
            card = await domain.tasks.card(GUILD, SLUG)
        finally:
            await domain.close()
    embed = task_embed(card, now=now).to_dict()
    target = out / "task-card-sized.png"
    await photograph(message_page(author="Conductor", embeds=[embed], now=now), target)
    print(f"wrote {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    asyncio.run(main(parser.parse_args().out))
