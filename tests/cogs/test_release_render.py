"""The answers of ``/release history`` and the board at their longest: within Discord's limits,
with what does not fit counted, and production never cut off by a long active release."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from cogs.board._render import board_embed
from cogs.release._render import history_text, status_embed
from conductor.costs import SpendUnit, release_cost
from conductor.states import ReleaseState, SealStatus, TaskState
from conductor.views import LockView, ReleaseView, ShippedView, StatusView, TaskView

AT = datetime(2026, 12, 1, 14, 20, tzinfo=UTC)


def release(number: int, **fields: object) -> ReleaseView:
    return ReleaseView(
        slug=f"2026-12-01-{'x' * 80}-{number}",
        name="x",
        state=ReleaseState.SHIPPED,
        opened_by="olga",
        opened_by_id=1,
        opened_at=AT,
        version=number,
        shipped_at=AT,
        shipped_by="n" * 100,
        merge_sha="a" * 40,
        seal_status=SealStatus.RED,
        **fields,  # type: ignore[arg-type]
    )


def test_history_at_its_longest_fits_one_message_and_counts_the_rest() -> None:
    entries = tuple(
        ShippedView(
            replace(
                release(n),
                state=ReleaseState.ROLLED_BACK,
                rolled_back_by="r" * 100,
                rolled_back_at=AT,
                rollback_reason="why " * 200,
            ),
            seals=3,
        )
        for n in range(25, 0, -1)
    )
    text = history_text(entries, 25)
    assert len(text) <= 2000
    lines = text.splitlines()
    assert lines[0] == "📜 The last 25 shipped releases, newest first:"
    shown = sum(1 for line in lines if line.startswith("⏪ `"))
    assert 1 <= shown < 25
    assert lines[-1] == (
        f"… and {25 - shown} older, not shown (one message holds 2,000 characters)."
    )
    # what is shown is whole: the newest first, its rollback on the line below
    assert lines[1].startswith("⏪ `2026-12-01-") and lines[1].count("-25`") == 1
    assert lines[2].startswith("  ⏪ rolled back by " + "r" * 59 + "… <t:")


def test_history_of_a_few_short_ones_shows_them_all() -> None:
    entries = (ShippedView(release(2), 1, in_production=True), ShippedView(release(1), 1))
    text = history_text(entries, 10)
    assert text.splitlines()[0] == "📜 All 2 shipped releases, newest first:"
    assert text.count("**in production**") == 1 and "older" not in text


def member(number: int) -> TaskView:
    return TaskView(
        slug=f"task-{number}",
        title="t" * 200,
        kind="feature",
        branch="b" * 200,
        state=TaskState.ASSEMBLED,
        release_slug="active",
        author_name="a",
        author_id=None,
    )


def test_the_board_keeps_the_lock_first_and_production_last_whatever_the_members() -> None:
    active = replace(
        release(9),
        state=ReleaseState.ASSEMBLING,
        version=None,
        members=tuple(member(n) for n in range(20)),
    )
    lock = LockView(1, "olga", 501, "r" * 500, AT)
    status = StatusView(active, (), release(8), lock, held=True)
    description = board_embed(status, ()).description
    assert description is not None and len(description) <= 4000
    assert description.startswith("🔒 **Locked** by olga since ")
    assert description.endswith("⚠️ Held: neither re-sealed green nor rolled back.")
    assert "**Production:** 🚀 `2026-12-01-" in description


def test_status_shows_the_lock_first_and_production_last() -> None:
    lock = LockView(1, "olga", 501, "db migration", AT)
    embed = status_embed(StatusView(None, (), release(8), lock))
    assert embed.description == "Open one once the train is unlocked."
    assert [f.name for f in embed.fields] == ["Lock", "Production"]
    assert embed.fields[1].value is not None and "held" not in embed.fields[1].value


def test_status_shows_each_releases_cost_with_the_unknown_counted() -> None:
    moves = [
        SpendUnit("core", TaskState.BUILDING, TaskState.SUBMITTED, "opus", 9_500, Decimal("1.25")),
        SpendUnit("ui", TaskState.CREATED, TaskState.SUBMITTED, None, None, None),
    ]
    active = replace(
        replace(release(9), state=ReleaseState.ASSEMBLING, version=None, seal_status=None),
        cost=release_cost(moves, ["core", "ui"]),
    )
    shipped = replace(release(8), cost=release_cost(moves[1:], ["ui"]))
    embed = status_embed(StatusView(active, (), shipped))
    [cost] = [f.value for f in embed.fields if f.name == "Cost so far"]
    assert cost == (
        "💸 $1.25 · 9.5 k tokens · 2 members · 1 of 2 handoffs reported nothing (unknown, not "
        "counted as $0)\nby model: opus $1.25 · 1 more\n"
        "by stage: building → submitted $1.25 · created → submitted unknown"
    )
    [production] = [f.value for f in embed.fields if f.name == "Production"]
    assert production is not None and production.endswith(
        "\n💸 cost unknown: the one handoff did not report tokens or cost (1 member)"
    )
    unread = status_embed(StatusView(replace(active, cost=None), (), None))
    assert all(f.name != "Cost so far" for f in unread.fields)
