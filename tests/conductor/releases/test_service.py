"""The release rules: the singleton, add/remove/assemble/ship/abandon and their refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from conductor.bootstrap import Conductor
from conductor.errors import Blocked, InvalidInput, InvalidMove, NotFound, ReleaseActive
from conductor.releases.service import release_slug_for
from conductor.states import ReleaseState, TaskState
from conductor.views import Actor
from tests.helpers import GUILD, OPERATOR, MakeReviewed, handoff

OTHER_GUILD = 2002


async def _state(domain: Conductor, slug: str) -> TaskState:
    return (await domain.tasks.card(GUILD, slug)).task.state


def test_release_slug_is_dated_and_clean() -> None:
    on = date(2026, 6, 20)
    assert release_slug_for("Deploy Foundation!", on) == "2026-06-20-deploy-foundation"
    assert release_slug_for("2026-06-19-hotfix", on) == "2026-06-19-hotfix"
    with pytest.raises(InvalidInput, match="at least one letter or digit"):
        release_slug_for("  !!! ", on)
    with pytest.raises(InvalidInput, match="too long"):
        release_slug_for("x" * 61, on)


async def test_second_open_names_the_active_release(domain: Conductor) -> None:
    first = await domain.releases.open(GUILD, "deploy foundation", OPERATOR, on=date(2026, 6, 20))
    assert first.slug == "2026-06-20-deploy-foundation"
    assert first.state is ReleaseState.ASSEMBLING
    with pytest.raises(ReleaseActive) as refused:
        await domain.releases.open(GUILD, "another", Actor("bob", 2))
    message = str(refused.value)
    assert "`2026-06-20-deploy-foundation` is already active (assembling)" in message
    assert "opened by olga on " in message
    assert first.opened_at.strftime("%Y-%m-%d %H:%M UTC") in message
    # Another guild has its own slot.
    other = await domain.releases.open(OTHER_GUILD, "deploy foundation", OPERATOR)
    assert other.state is ReleaseState.ASSEMBLING


async def test_same_name_same_day_after_abandon_gets_a_fresh_slug(domain: Conductor) -> None:
    on = date(2026, 6, 20)
    first = await domain.releases.open(GUILD, "train", OPERATOR, on=on)
    await domain.releases.abandon(GUILD, "wrong members", OPERATOR)
    second = await domain.releases.open(GUILD, "train", OPERATOR, on=on)
    assert (first.slug, second.slug) == ("2026-06-20-train", "2026-06-20-train-2")


async def test_add_refuses_unknown_and_non_reviewed_tasks(domain: Conductor) -> None:
    with pytest.raises(NotFound, match="No release is active"):
        await domain.releases.add_task(GUILD, "anything", OPERATOR)
    await domain.releases.open(GUILD, "r", OPERATOR)
    with pytest.raises(NotFound, match="No task `ghost`"):
        await domain.releases.add_task(GUILD, "ghost", OPERATOR)
    await domain.handoffs.apply(handoff("handoff wip → building"))
    with pytest.raises(InvalidMove) as refused:
        await domain.releases.add_task(GUILD, "wip", OPERATOR)
    assert str(refused.value) == "Task `wip` is building; only reviewed tasks can join a release."
    await domain.handoffs.apply(handoff("handoff sub → submitted"))
    with pytest.raises(
        InvalidMove, match=r"submitted; only reviewed .* waiting for review approvals"
    ):
        await domain.releases.add_task(GUILD, "sub", OPERATOR)
    assert await _state(domain, "wip") is TaskState.BUILDING


async def test_add_names_every_blocking_dependency(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    await domain.handoffs.apply(handoff("handoff core → building"))
    await make_reviewed("board")  # reviewed, not aboard: still blocks
    await make_reviewed("app", depends_on="core, board, ghost")
    release = await domain.releases.open(GUILD, "r", OPERATOR)
    with pytest.raises(Blocked) as refused:
        await domain.releases.add_task(GUILD, "app", OPERATOR)
    assert str(refused.value) == (
        f"Task `app` can't join `{release.slug}`: it depends on "
        "`core` (building), `board` (reviewed), `ghost` (unknown task). "
        "Each dependency must be shipped or ride this release first."
    )
    assert await _state(domain, "app") is TaskState.REVIEWED


async def test_dependency_on_the_same_release_is_allowed_and_merged_first(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    await make_reviewed("ui", depends_on="api")
    await make_reviewed("api", depends_on="schema")
    await make_reviewed("schema")
    await make_reviewed("docs")
    await domain.releases.open(GUILD, "r", OPERATOR)
    await domain.releases.add_task(GUILD, "docs", OPERATOR)
    await domain.releases.add_task(GUILD, "schema", OPERATOR)
    await domain.releases.add_task(GUILD, "api", OPERATOR)
    view = await domain.releases.add_task(GUILD, "ui", OPERATOR)
    assert [m.slug for m in view.members] == ["docs", "schema", "api", "ui"]
    assert all(m.state is TaskState.ASSEMBLED for m in view.members)
    # Merge order is dependencies first even when they joined later.
    await domain.releases.remove_task(GUILD, "ui", OPERATOR)
    await domain.releases.remove_task(GUILD, "api", OPERATOR)
    await domain.releases.remove_task(GUILD, "schema", OPERATOR)
    await make_reviewed("late", depends_on="schema")
    await domain.releases.add_task(GUILD, "schema", OPERATOR)
    await domain.releases.add_task(GUILD, "late", OPERATOR)
    await domain.releases.add_task(GUILD, "api", OPERATOR)
    view = await domain.releases.add_task(GUILD, "ui", OPERATOR)
    order = [m.slug for m in view.members]
    assert order.index("schema") < order.index("late")
    assert order.index("schema") < order.index("api") < order.index("ui")
    api = next(m for m in view.members if m.slug == "api")
    assert [(d.slug, d.state, d.release_slug) for d in api.dependencies] == [
        ("schema", TaskState.ASSEMBLED, view.slug)
    ]


async def test_shipped_dependency_unblocks(domain: Conductor, make_reviewed: MakeReviewed) -> None:
    await make_reviewed("base")
    await make_reviewed("top", depends_on="base")
    await domain.releases.open(GUILD, "one", OPERATOR)
    await domain.releases.add_task(GUILD, "base", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    await domain.releases.ship(GUILD, OPERATOR)
    await domain.releases.open(GUILD, "two", OPERATOR)
    view = await domain.releases.add_task(GUILD, "top", OPERATOR)
    assert [m.slug for m in view.members] == ["top"]


async def test_remove_refused_while_a_member_depends_on_it(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    await make_reviewed("core")
    await make_reviewed("ui", depends_on="core")
    await make_reviewed("api", depends_on="core")
    release = await domain.releases.open(GUILD, "r", OPERATOR)
    for slug in ("core", "ui", "api"):
        await domain.releases.add_task(GUILD, slug, OPERATOR)
    with pytest.raises(Blocked) as refused:
        await domain.releases.remove_task(GUILD, "core", OPERATOR)
    assert str(refused.value) == (
        f"Task `core` can't leave `{release.slug}`: `ui`, `api` depend on it. Remove them first."
    )
    assert await _state(domain, "core") is TaskState.ASSEMBLED
    await domain.releases.remove_task(GUILD, "ui", OPERATOR)
    await domain.releases.remove_task(GUILD, "api", OPERATOR)
    view = await domain.releases.remove_task(GUILD, "core", OPERATOR)
    assert view.members == ()
    card = await domain.tasks.card(GUILD, "core")
    assert card.task.state is TaskState.REVIEWED
    assert card.task.release_slug is None
    with pytest.raises(InvalidInput, match="is not on"):
        await domain.releases.remove_task(GUILD, "core", OPERATOR)


async def test_assemble_needs_a_member_and_then_freezes_membership(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    await domain.releases.open(GUILD, "r", OPERATOR)
    with pytest.raises(InvalidMove, match="has no members yet"):
        await domain.releases.assemble(GUILD, OPERATOR)
    await make_reviewed("a")
    await make_reviewed("b")
    await domain.releases.add_task(GUILD, "a", OPERATOR)
    view = await domain.releases.assemble(GUILD, OPERATOR)
    assert view.state is ReleaseState.ASSEMBLED
    assert view.assembled_at is not None
    with pytest.raises(
        InvalidMove, match=r"is assembled\. Tasks can only be added while it is assembling"
    ):
        await domain.releases.add_task(GUILD, "b", OPERATOR)
    with pytest.raises(InvalidMove, match=r"is assembled\. Tasks can only be removed"):
        await domain.releases.remove_task(GUILD, "a", OPERATOR)
    with pytest.raises(InvalidMove, match="is assembled; it can't move to assembled"):
        await domain.releases.assemble(GUILD, OPERATOR)


async def test_ship_flips_everything_and_counts_versions(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    await make_reviewed("a")
    await make_reviewed("b")
    release = await domain.releases.open(GUILD, "first", OPERATOR)
    with pytest.raises(InvalidMove, match="is assembling; it can't move to shipped"):
        await domain.releases.ship(GUILD, OPERATOR)
    await domain.releases.add_task(GUILD, "a", OPERATOR)
    await domain.releases.add_task(GUILD, "b", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    shipped = await domain.releases.ship(GUILD, OPERATOR)
    assert (shipped.state, shipped.version, shipped.shipped_by) == (ReleaseState.SHIPPED, 1, "olga")
    assert {m.state for m in shipped.members} == {TaskState.SHIPPED}
    status = await domain.releases.status(GUILD)
    assert status.active is None
    assert status.last_shipped is not None and status.last_shipped.slug == release.slug
    # A terminal release cannot be revived, by any command.
    with pytest.raises(NotFound, match="No release is active"):
        await domain.releases.ship(GUILD, OPERATOR)
    with pytest.raises(NotFound, match="No release is active"):
        await domain.releases.abandon(GUILD, "oops", OPERATOR)
    await make_reviewed("c")
    await domain.releases.open(GUILD, "second", OPERATOR)
    await domain.releases.add_task(GUILD, "c", OPERATOR)
    await domain.releases.assemble(GUILD, OPERATOR)
    assert (await domain.releases.ship(GUILD, OPERATOR)).version == 2
    timeline = await domain.tasks.timeline(GUILD, "a")
    assert [(e.from_state, e.to_state) for e in timeline][-2:] == [
        (TaskState.REVIEWED, TaskState.ASSEMBLED),
        (TaskState.ASSEMBLED, TaskState.SHIPPED),
    ]


@pytest.mark.parametrize("assembled", [False, True], ids=["from-assembling", "from-assembled"])
async def test_abandon_returns_members_and_frees_the_slot(
    domain: Conductor, make_reviewed: MakeReviewed, assembled: bool
) -> None:
    await make_reviewed("a")
    await make_reviewed("b", depends_on="a")
    release = await domain.releases.open(GUILD, "doomed", OPERATOR)
    await domain.releases.add_task(GUILD, "a", OPERATOR)
    await domain.releases.add_task(GUILD, "b", OPERATOR)
    if assembled:
        await domain.releases.assemble(GUILD, OPERATOR)
    with pytest.raises(InvalidInput, match="needs a reason"):
        await domain.releases.abandon(GUILD, "   ", OPERATOR)
    view = await domain.releases.abandon(GUILD, "  conflict in b  ", OPERATOR)
    assert (view.state, view.abandon_reason) == (ReleaseState.ABANDONED, "conflict in b")
    for slug in ("a", "b"):
        card = await domain.tasks.card(GUILD, slug)
        assert (card.task.state, card.task.release_slug) == (TaskState.REVIEWED, None)
    assert (await domain.releases.status(GUILD)).active is None
    again = await domain.releases.open(GUILD, "retry", OPERATOR)
    assert again.slug != release.slug
    await domain.releases.add_task(GUILD, "a", OPERATOR)
    assert [m.slug for m in (await domain.releases.add_task(GUILD, "b", OPERATOR)).members] == [
        "a",
        "b",
    ]


async def test_the_board_is_the_status_and_the_newest_releases_and_guilds_lists_who_has_data(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    assert await domain.releases.guilds() == ()
    empty = await domain.releases.board(GUILD)
    assert (empty.status.active, empty.status.last_shipped, empty.recent) == (None, None, ())
    for name in ("one", "two"):
        await make_reviewed(f"{name}-core")
        await domain.releases.open(GUILD, name, OPERATOR)
        await domain.releases.add_task(GUILD, f"{name}-core", OPERATOR)
        await domain.releases.assemble(GUILD, OPERATOR)
        await domain.releases.ship(GUILD, OPERATOR)
    await make_reviewed("three-core")
    await domain.releases.open(GUILD, "three", OPERATOR)
    await domain.releases.add_task(GUILD, "three-core", OPERATOR)
    await make_reviewed("theirs", guild_id=OTHER_GUILD)

    board = await domain.releases.board(GUILD, 2)
    status = await domain.releases.status(GUILD)
    assert status.active is not None and status.last_shipped is not None
    assert status.active.cost is not None and status.last_shipped.cost is not None
    # the board is the status but for the cost, which it does not read
    assert board.status == replace(
        status,
        active=replace(status.active, cost=None),
        last_shipped=replace(status.last_shipped, cost=None),
    )
    assert board.recent == await domain.releases.recent(GUILD, 2)
    assert [r.name for r in board.recent] == ["three", "two"]
    assert board.status.last_shipped is not None and board.status.last_shipped.name == "two"
    assert [m.slug for m in board.recent[0].members] == ["three-core"]
    # a guild with only a task counts; the order is the ids'
    assert await domain.releases.guilds() == (GUILD, OTHER_GUILD)


async def test_status_reports_members_dependencies_and_blockers(
    domain: Conductor, make_reviewed: MakeReviewed
) -> None:
    assert (await domain.releases.status(GUILD)).active is None
    await domain.releases.open(GUILD, "r", OPERATOR)
    status = await domain.releases.status(GUILD)
    assert status.blockers == ("no members yet: `/release add` a reviewed task",)
    await make_reviewed("a")
    await make_reviewed("b", depends_on="a")
    await domain.releases.add_task(GUILD, "a", OPERATOR)
    await domain.releases.add_task(GUILD, "b", OPERATOR)
    status = await domain.releases.status(GUILD)
    assert status.active is not None
    assert [(m.slug, [d.slug for d in m.dependencies]) for m in status.active.members] == [
        ("a", []),
        ("b", ["a"]),
    ]
    await domain.releases.assemble(GUILD, OPERATOR)
    assert (await domain.releases.status(GUILD)).blockers == ()
