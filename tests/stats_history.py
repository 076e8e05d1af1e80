"""Sixty days of a train, written straight into the tables (driving 60 days through the bot
is slow): eight ships (green, red then re-sealed green, green then rolled back, red then rolled
back, an ``error`` seal, red and never restored), their tasks' handoffs with costs (some
unknown), the sealed bids and the measured sizes; an abandoned release, an active one and
another guild's ship beside them, none of which counts. ``tests/conductor/test_stats.py``
works out every figure by hand from this; ``bench/stats_picture.py`` draws it for the docs.

``NOW`` is Wednesday 2026-03-04 12:00 UTC: the 30-day window starts Monday 2026-02-02 12:00,
the 60-day one Saturday 2026-01-03 12:00."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

from conductor.states import (
    BidRole,
    HandoffOutcome,
    ReleaseState,
    SealStatus,
    Size,
    SizeBasis,
    TaskState,
)
from store.db import Database, Session
from store.models import HandoffMessage, Release, ReleaseSeal, StageEvent, Task, TaskBid

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
GUILD = 1001
OTHER_GUILD = 2002
CHANNEL = 7001
#: the ship seal comes this long after the ship
SEAL_AFTER = timedelta(minutes=5)

PM, PO, DEV = BidRole.PM, BidRole.PO, BidRole.DEV
S, M, L, XL = Size.S, Size.M, Size.L, Size.XL
D = Decimal


@dataclass(frozen=True)
class SeedTask:
    slug: str
    #: hours from its first handoff to its release's ship
    lead_h: float
    actual: Size | None
    bids: dict[BidRole, Size]
    #: the cost its two handoff moves reported (building, submitted); None: unknown
    costs: tuple[Decimal | None, Decimal | None]
    #: a rejected handoff this many hours before the ship, earlier than its first move
    rejected_h: float | None = None


@dataclass(frozen=True)
class SeedRelease:
    slug: str
    days_ago: float
    seal: SealStatus
    tasks: tuple[SeedTask, ...]
    #: later seals: (hours after the ship seal, trigger, status)
    reseals: tuple[tuple[float, str, SealStatus], ...] = ()
    #: rolled back this many hours after the ship seal
    rolled_back_h: float | None = None
    guild_id: int = GUILD


HISTORY: tuple[SeedRelease, ...] = (
    # -- only in the 60-day window
    SeedRelease(
        "2026-01-08-alpha", 55, SealStatus.GREEN,
        (SeedTask("t1a", 200, XL, {PM: XL, DEV: L}, (D("20.00"), D("5.00"))),),
    ),
    SeedRelease(
        "2026-01-18-beta", 45, SealStatus.RED,
        (SeedTask("t2a", 24, S, {PO: S}, (D("1.00"), D("1.00"))),),
        reseals=((6, "reseal", SealStatus.GREEN),),
    ),
    SeedRelease(
        "2026-01-23-gamma", 40, SealStatus.GREEN,
        (
            SeedTask("t3a", 12, M, {DEV: M}, (D("0.40"), None)),
            SeedTask("t3b", 8, None, {}, (D("0.60"), D("1.00"))),
        ),
        rolled_back_h=48 - 5 / 60,  # two days after the ship
    ),
    # -- in both windows
    SeedRelease(
        "2026-02-07-delta", 25, SealStatus.GREEN,
        (
            SeedTask("t4a", 20, M, {PM: M, PO: S, DEV: M}, (D("1.50"), D("2.00"))),
            SeedTask("t4b", 50, L, {PM: M, DEV: L}, (D("3.00"), None)),
        ),
    ),
    SeedRelease(
        "2026-02-12-epsilon", 20, SealStatus.RED,
        (SeedTask("t5a", 30, S, {PM: S, DEV: M}, (D("0.50"), D("0.25"))),),
        reseals=((1, "reseal", SealStatus.RED),),
        rolled_back_h=3,
    ),
    SeedRelease(
        "2026-02-22-zeta", 10, SealStatus.ERROR,
        (
            SeedTask("t6a", 10, M, {PO: M, DEV: M}, (None, None)),
            SeedTask("t6b", 70, XL, {PM: L, DEV: XL}, (None, None), rejected_h=70),
        ),
    ),
    SeedRelease(
        "2026-02-27-eta", 5, SealStatus.RED,
        (SeedTask("t7a", 40, None, {PM: M}, (D("10.00"), D("2.00"))),),
    ),
    SeedRelease(
        "2026-03-03-theta", 1, SealStatus.GREEN,
        (
            SeedTask("t8a", 5, S, {PO: M, DEV: S}, (D("0.10"), D("0.20"))),
            SeedTask("t8b", 100, L, {PM: L, PO: XL, DEV: L}, (D("4.00"), D("5.45"))),
        ),
        reseals=((2, "reseal", SealStatus.GREEN),),
    ),
    # -- never counted: another guild's ship
    SeedRelease(
        "2026-03-02-elsewhere", 2, SealStatus.RED,
        (SeedTask("x1", 3, S, {PM: M}, (D("99.00"), D("1.00"))),),
        guild_id=OTHER_GUILD,
    ),
)  # fmt: skip


@dataclass
class _Ids:
    messages: count[int] = field(default_factory=lambda: count(880_000))


async def seed_history(db: Database, *, now: datetime = NOW, guild_id: int = GUILD) -> None:
    """Write :data:`HISTORY` (and an abandoned and an active release) as of ``now``, in
    ``guild_id``."""
    ids = _Ids()
    async with db.write() as session:
        for version, spec in enumerate(HISTORY, start=1):
            shipped_at = now - timedelta(days=spec.days_ago)
            sealed_at = shipped_at + SEAL_AFTER
            rolled_back_at = (
                sealed_at + timedelta(hours=spec.rolled_back_h)
                if spec.rolled_back_h is not None
                else None
            )
            guild = guild_id if spec.guild_id == GUILD else spec.guild_id
            release = Release(
                guild_id=guild,
                slug=spec.slug,
                name=spec.slug[11:],
                state=ReleaseState.ROLLED_BACK if rolled_back_at else ReleaseState.SHIPPED,
                opened_by="olga",
                opened_at=shipped_at - timedelta(days=1),
                shipped_at=shipped_at,
                shipped_by="olga",
                version=version,
                rolled_back_at=rolled_back_at,
                rolled_back_by="olga" if rolled_back_at else None,
            )
            session.add(release)
            await session.flush()
            seals = [(sealed_at, "ship", spec.seal)] + [
                (sealed_at + timedelta(hours=h), trigger, status)
                for h, trigger, status in spec.reseals
            ]
            for at, trigger, status in seals:
                session.add(
                    ReleaseSeal(
                        release_id=release.id,
                        status=status,
                        summary=f"{status.value}",
                        checked_at=at,
                        duration_ms=1000,
                        results=[],
                        trigger=trigger,
                    )
                )
            release.seal_status, release.seal_checked_at = seals[-1][2], seals[-1][0]
            for position, task_spec in enumerate(spec.tasks):
                await _seed_task(
                    session, ids, guild, task_spec, release, position, shipped_at, rolled_back_at
                )
        for name, state in (
            ("abandoned", ReleaseState.ABANDONED),
            ("next", ReleaseState.ASSEMBLING),
        ):
            session.add(
                Release(
                    guild_id=guild_id,
                    slug=f"2026-03-04-{name}",
                    name=name,
                    state=state,
                    opened_by="olga",
                    opened_at=now - timedelta(days=3),
                    abandoned_at=now - timedelta(days=2)
                    if state is ReleaseState.ABANDONED
                    else None,
                )
            )


async def _seed_task(
    session: Session,
    ids: _Ids,
    guild_id: int,
    task_spec: SeedTask,
    release: Release,
    position: int,
    shipped_at: datetime,
    rolled_back_at: datetime | None,
) -> None:
    first = shipped_at - timedelta(hours=task_spec.lead_h)
    submitted = first + (shipped_at - first) / 2
    # after a rejected first handoff (at ``first``), the first move comes an hour later
    moved = first + timedelta(hours=1) if task_spec.rejected_h is not None else first
    task = Task(
        guild_id=guild_id,
        slug=task_spec.slug,
        title=f"Task {task_spec.slug}",
        kind="feature",
        state=TaskState.REVIEWED if rolled_back_at else TaskState.SHIPPED,
        release_id=None if rolled_back_at else release.id,
        release_position=None if rolled_back_at else position,
        created_at=first,
        state_since=rolled_back_at or shipped_at,
        actual_size=task_spec.actual,
        actual_basis=SizeBasis.COST if task_spec.actual else None,
    )
    session.add(task)
    await session.flush()
    moves = (
        (TaskState.CREATED, TaskState.BUILDING, moved, task_spec.costs[0]),
        (TaskState.BUILDING, TaskState.SUBMITTED, submitted, task_spec.costs[1]),
    )
    if task_spec.rejected_h is not None:
        session.add(
            HandoffMessage(
                guild_id=guild_id,
                channel_id=CHANNEL,
                message_id=next(ids.messages),
                author_name="agent",
                author_kind="bot",
                text="task: broken",
                received_at=shipped_at - timedelta(hours=task_spec.rejected_h),
                outcome=HandoffOutcome.REJECTED,
                error="no state",
                task_id=task.id,
            )
        )
    for source, dest, at, cost in moves:
        message_id = next(ids.messages)
        session.add(
            HandoffMessage(
                guild_id=guild_id,
                channel_id=CHANNEL,
                message_id=message_id,
                author_name="agent",
                author_kind="bot",
                text=f"task: {task_spec.slug}\nstate: {dest.value}",
                received_at=at,
                outcome=HandoffOutcome.APPLIED,
                task_id=task.id,
                note=f"{task_spec.slug} {dest.value}.",
            )
        )
        await session.flush()
        session.add(
            StageEvent(
                task_id=task.id,
                from_state=source,
                to_state=dest,
                trigger="handoff",
                actor="agent",
                at=at,
                model="claude" if cost is not None else None,
                tokens=int(cost * 10_000) if cost is not None else None,
                cost=cost,
                handoff_message_id=message_id,
            )
        )
    # the ship (no handoff: never part of the spend), and a rollback's move back
    session.add(
        StageEvent(
            task_id=task.id,
            from_state=TaskState.ASSEMBLED,
            to_state=TaskState.SHIPPED,
            trigger="ship",
            actor="olga",
            at=shipped_at,
            release_id=release.id,
        )
    )
    if rolled_back_at is not None:
        session.add(
            StageEvent(
                task_id=task.id,
                from_state=TaskState.SHIPPED,
                to_state=TaskState.REVIEWED,
                trigger="roll_back",
                actor="olga",
                at=rolled_back_at,
                release_id=release.id,
            )
        )
    for role, size in task_spec.bids.items():
        session.add(TaskBid(task_id=task.id, role=role, size=size, bidder=role.value, at=first))
