"""Tasks.page (``/task list``, keyset pages) and Tasks.suggest (the autocompletes): the
same tasks as the whole list, read a page at a time; on both backends."""

from __future__ import annotations

from conductor.bootstrap import Conductor
from conductor.states import TaskState
from tests.helpers import GUILD, handoff

OTHER_GUILD = GUILD + 1


async def _tasks(domain: Conductor, count: int) -> None:
    for i in range(count):
        await domain.handoffs.apply(handoff(f"handoff task-{i:02d} → building\ntitle: Job {i}"))
    await domain.handoffs.apply(handoff("handoff mine → building", guild_id=OTHER_GUILD))


async def test_pages_walk_every_task_newest_first_once(domain: Conductor) -> None:
    await _tasks(domain, 7)
    await domain.handoffs.apply(handoff("handoff task-02 → submitted"))  # now the newest
    seen: list[str] = []
    page = await domain.tasks.page(GUILD, size=3)
    while True:
        seen += [t.slug for t in page.tasks]
        after = page.after(len(page.tasks))
        if after is None:
            break
        page = await domain.tasks.page(GUILD, after=after, size=3)
    assert seen == [t.slug for t in await domain.tasks.find(GUILD)]
    assert seen[0] == "task-02" and len(seen) == 7


async def test_a_page_of_one_state_and_a_page_cut_short(domain: Conductor) -> None:
    await _tasks(domain, 4)
    await domain.handoffs.apply(handoff("handoff task-01 → submitted"))
    submitted = await domain.tasks.page(GUILD, TaskState.SUBMITTED)
    assert [t.slug for t in submitted.tasks] == ["task-01"] and not submitted.more
    assert submitted.after(1) is None
    first = await domain.tasks.page(GUILD, size=2)
    assert first.more
    # only one of the two shown: the next page starts after it, not after the page
    rest = await domain.tasks.page(GUILD, after=first.after(1), size=10)
    assert rest.tasks[0].slug == first.tasks[1].slug


async def test_suggestions_by_prefix_then_by_word_in_the_newest(domain: Conductor) -> None:
    await _tasks(domain, 30)
    newest = await domain.tasks.suggest(GUILD, "")
    assert len(newest) == 25 and newest[0].slug == "task-29"
    assert [t.slug for t in await domain.tasks.suggest(GUILD, "TASK-1")] == [
        f"task-1{i}" for i in range(10)
    ]
    assert [t.slug for t in await domain.tasks.suggest(GUILD, "job 7")] == ["task-07"]
    # no slug starts with it: those containing it, most recently changed first
    assert [t.slug for t in await domain.tasks.suggest(GUILD, "-2")] == [
        f"task-2{i}" for i in reversed(range(10))
    ]
    assert await domain.tasks.suggest(GUILD, "zebra") == ()
    assert await domain.tasks.suggest(GUILD, "%") == ()  # LIKE's wildcards are plain text
    assert [t.slug for t in await domain.tasks.suggest(OTHER_GUILD, "")] == ["mine"]


async def test_suggestions_of_one_state(domain: Conductor) -> None:
    await _tasks(domain, 3)
    await domain.handoffs.apply(handoff("handoff task-01 → submitted"))
    assert [t.slug for t in await domain.tasks.suggest(GUILD, "", TaskState.SUBMITTED)] == [
        "task-01"
    ]
    assert [t.slug for t in await domain.tasks.suggest(GUILD, "task", TaskState.SUBMITTED)] == [
        "task-01"
    ]
    assert await domain.tasks.suggest(GUILD, "task-02", TaskState.SUBMITTED) == ()
