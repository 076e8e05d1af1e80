"""Delivery metrics over a window of days: the four keys of DORA as Google's Four Keys
computes them (deploy frequency, lead time for changes, change failure rate, time to
restore), the sealed forecasts' hit rate and calibration per role, and the cost of a release.

Each figure keeps the releases (and tasks) behind it, so the command and the web board can
name them. The definitions, and where Conductor's differ from Four Keys, are in the README
("Delivery metrics"). Pure reading: one snapshot of the database, no Discord, no chart."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select

from conductor.errors import InvalidInput
from conductor.states import (
    REDEPLOY,
    RESEAL,
    SHIP,
    BidRole,
    ReleaseState,
    SealStatus,
    Size,
    TaskState,
)
from store.db import Database
from store.models import HandoffMessage, Release, ReleaseSeal, StageEvent, Task, TaskBid
from store.types import utcnow

DAYS_DEFAULT = 30
DAYS_MAX = 365
#: a size as points, doubling at each step (Wideband Delphi's calibration is a ratio of these)
POINTS: dict[Size, int] = {Size.S: 1, Size.M: 2, Size.L: 4, Size.XL: 8}
#: the seals after which production is known good again (a ``/seal``, a redeploy's seal)
RESTORING_SEALS = (RESEAL, REDEPLOY)
DAY = 86_400.0
HOUR = 3_600.0

FrequencyBucket = Literal["daily", "weekly", "monthly", "yearly"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks, as SQL's
    ``PERCENTILE_CONT`` (which Four Keys uses) and numpy's default: the median of 1, 2, 3, 10
    is 2.5, its p90 7.9. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_bucket(seconds: float | None) -> str | None:
    """Four Keys' bucket of a median lead time or time to restore (METRICS.md: under a day,
    a week, a month of 730 hours, six months; else a year)."""
    if seconds is None:
        return None
    hours = seconds / HOUR
    for limit, name in ((24, "one day"), (168, "one week"), (730, "one month")):
        if hours < limit:
            return name
    return "six months" if hours < 730 * 6 else "one year"


def failure_bucket(rate: float | None) -> str | None:
    """Four Keys' change failure rate bucket: ≤ 15 %, < 46 %, < 61 %; above, "61-100%"
    (Four Keys says "46-60%" for anything from 46 %: a team failing every ship would read
    that it fails at most 60 % of the time)."""
    if rate is None:
        return None
    if rate <= 0.15:
        return "0-15%"
    if rate < 0.46:
        return "16-45%"
    return "46-60%" if rate < 0.61 else "61-100%"


def duration_text(seconds: float | None) -> str:
    """``3 d 4 h``, ``5 h 20 min``, ``12 min``, ``40 s``; ``—`` for none."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    days, rest = divmod(whole, int(DAY))
    hours, rest = divmod(rest, int(HOUR))
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def money(amount: Decimal | None) -> str:
    return "—" if amount is None else f"${amount:,.2f}"


# -- what the figures are made of -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShipFact:
    """One ship (a release shipped in the window) and what became of it."""

    slug: str
    version: int | None
    shipped_at: datetime
    #: its ship seal was red (an ``error`` seal says nothing of the change: not a failure)
    red: bool
    #: rolled back by an operator (by the window's end)
    rolled_back: bool
    #: its members' handoff moves: the dollars and tokens reported, and how many reported none
    cost: Decimal | None
    tokens: int | None
    moves: int
    cost_unknown: int
    tokens_unknown: int

    @property
    def failed(self) -> bool:
        return self.red or self.rolled_back


@dataclass(frozen=True, slots=True)
class LeadTime:
    """One change: a task from its first handoff to the ship of a release carrying it."""

    task: str
    release: str
    first_at: datetime
    shipped_at: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.shipped_at - self.first_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Restore:
    """A failed ship: from its red ship seal (a rollback without one: from the ship) to the
    first green re-seal or its rollback; ``restored_at`` None while production is not back."""

    release: str
    failed_at: datetime
    restored_at: datetime | None
    #: "green re-seal", "rollback" or None (open)
    how: str | None

    @property
    def seconds(self) -> float | None:
        if self.restored_at is None:
            return None
        return max(0.0, (self.restored_at - self.failed_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Forecast:
    """One role's sealed bids on tasks shipped in the window with a measured size."""

    role: BidRole
    #: (task slug, bid, actual), by slug
    bids: tuple[tuple[str, Size, Size], ...]

    @property
    def count(self) -> int:
        return len(self.bids)

    @property
    def hits(self) -> int:
        return sum(bid == actual for _, bid, actual in self.bids)

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.count if self.bids else None

    @property
    def calibration(self) -> float | None:
        """The geometric mean of actual over forecast in points (S 1, M 2, L 4, XL 8):
        1.0 calibrated, 2.0 the tasks came out twice the forecast, 0.5 half."""
        if not self.bids:
            return None
        logs = [math.log2(POINTS[actual] / POINTS[bid]) for _, bid, actual in self.bids]
        return float(2 ** (sum(logs) / len(logs)))


@dataclass(frozen=True, slots=True)
class Week:
    """A calendar week (Monday, UTC) of the window: what the chart draws."""

    start: date
    deploys: int
    #: distinct days with a ship (inside the window)
    deploy_days: int
    failures: int
    #: the median lead time of the changes shipped that week
    lead_median: float | None


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    guild_id: int
    days: int
    start: datetime
    end: datetime
    ships: tuple[ShipFact, ...]
    lead_times: tuple[LeadTime, ...]
    restores: tuple[Restore, ...]
    forecasts: tuple[Forecast, ...]
    weeks: tuple[Week, ...] = field(default=())
    #: each role's forecasts over the window of the same length just before this one (the
    #: calibration over time: is a role's actual ÷ forecast moving toward 1?)
    earlier: tuple[Forecast, ...] = field(default=())

    # -- deploy frequency

    @property
    def deploys(self) -> int:
        return len(self.ships)

    @property
    def per_week(self) -> float:
        return self.deploys * 7 / self.days

    @property
    def frequency_bucket(self) -> FrequencyBucket:
        return frequency_bucket(self.weeks)

    # -- lead time

    @property
    def lead_median(self) -> float | None:
        return percentile([lead.seconds for lead in self.lead_times], 0.5)

    @property
    def lead_p90(self) -> float | None:
        return percentile([lead.seconds for lead in self.lead_times], 0.9)

    @property
    def lead_bucket(self) -> str | None:
        return duration_bucket(self.lead_median)

    # -- change failure rate

    @property
    def failures(self) -> tuple[ShipFact, ...]:
        return tuple(ship for ship in self.ships if ship.failed)

    @property
    def failure_rate(self) -> float | None:
        return len(self.failures) / self.deploys if self.ships else None

    @property
    def failure_bucket(self) -> str | None:
        return failure_bucket(self.failure_rate)

    # -- time to restore

    @property
    def restored(self) -> tuple[Restore, ...]:
        return tuple(r for r in self.restores if r.restored_at is not None)

    @property
    def still_open(self) -> tuple[Restore, ...]:
        return tuple(r for r in self.restores if r.restored_at is None)

    @property
    def restore_median(self) -> float | None:
        return percentile([r.seconds for r in self.restored if r.seconds is not None], 0.5)

    @property
    def restore_bucket(self) -> str | None:
        return duration_bucket(self.restore_median)

    # -- cost

    @property
    def cost_total(self) -> Decimal | None:
        known = [ship.cost for ship in self.ships if ship.cost is not None]
        return sum(known, Decimal(0)) if known else None

    @property
    def costed(self) -> tuple[ShipFact, ...]:
        """The ships whose members reported some cost (the mean is over these)."""
        return tuple(ship for ship in self.ships if ship.cost is not None)

    @property
    def cost_mean(self) -> Decimal | None:
        total = self.cost_total
        if total is None:
            return None
        return (total / len(self.costed)).quantize(Decimal("0.01"))

    @property
    def cost_unknown(self) -> int:
        return sum(ship.cost_unknown for ship in self.ships)

    @property
    def tokens_total(self) -> int | None:
        known = [ship.tokens for ship in self.ships if ship.tokens is not None]
        return sum(known) if known else None

    def earlier_forecast(self, role: BidRole) -> Forecast:
        """``role``'s forecasts in the window before this one (none read: no bids)."""
        return next((f for f in self.earlier if f.role is role), Forecast(role, ()))

    def forecast(self, role: BidRole) -> Forecast:
        return next(f for f in self.forecasts if f.role is role)


def frequency_bucket(weeks: Sequence[Week]) -> FrequencyBucket:
    """Four Keys' deployment frequency bucket (METRICS.md, "Calculating the bucket"): daily
    when the median number of days with a deploy per week is at least 3; weekly when the
    median week has a deploy; monthly when the median (over weeks) of deploy-weeks in the
    week's month is at least 1; yearly otherwise. Medians by ``PERCENTILE_CONT``."""
    if not weeks:
        return "yearly"
    if (percentile([w.deploy_days for w in weeks], 0.5) or 0) >= 3:
        return "daily"
    if (percentile([1.0 if w.deploys else 0.0 for w in weeks], 0.5) or 0) >= 1:
        return "weekly"
    per_month: dict[tuple[int, int], int] = defaultdict(int)
    for w in weeks:
        per_month[(w.start.year, w.start.month)] += 1 if w.deploys else 0
    monthly = [float(per_month[(w.start.year, w.start.month)]) for w in weeks]
    return "monthly" if (percentile(monthly, 0.5) or 0) >= 1 else "yearly"


# -- reading them ------------------------------------------------------------------------------


def check_days(days: int) -> int:
    if not 1 <= days <= DAYS_MAX:
        raise InvalidInput(
            f"`days` is how far back the figures look: 1 to {DAYS_MAX} (default "
            f"{DAYS_DEFAULT}); {days} is out of range."
        )
    return days


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def delivery_stats(
    db: Database,
    guild_id: int,
    days: int = DAYS_DEFAULT,
    *,
    now: datetime | None = None,
    earlier: bool = True,
) -> DeliveryStats:
    """The figures of ``guild_id`` over ``[now - days, now]``, read in one snapshot (seven
    queries whatever the history); with ``earlier``, the forecasts of the window of the same
    length before it too (as many queries again). ``days`` out of 1..365 is refused."""
    check_days(days)
    end = now or utcnow()
    start = end - timedelta(days=days)
    async with db.read() as session:
        releases = (
            await session.scalars(
                select(Release)
                .where(
                    Release.guild_id == guild_id,
                    Release.state.in_((ReleaseState.SHIPPED, ReleaseState.ROLLED_BACK)),
                    Release.shipped_at >= start,
                    Release.shipped_at <= end,
                )
                .order_by(Release.shipped_at, Release.id)
            )
        ).all()
        ids = [r.id for r in releases]
        seals: dict[int, list[ReleaseSeal]] = defaultdict(list)
        # a release's members as it shipped: the ship moves that carried it (a rollback
        # sends the members back and detaches them, their ship moves stay)
        members: dict[int, list[Task]] = defaultdict(list)
        tasks: dict[int, Task] = {}
        first_at: dict[int, datetime] = {}
        spend: dict[int, list[tuple[Decimal | None, int | None]]] = defaultdict(list)
        bids: dict[int, list[TaskBid]] = defaultdict(list)
        if ids:
            for seal in await session.scalars(
                select(ReleaseSeal)
                .where(ReleaseSeal.release_id.in_(ids), ReleaseSeal.checked_at <= end)
                .order_by(ReleaseSeal.id)
            ):
                seals[seal.release_id].append(seal)
            shipped = await session.execute(
                select(StageEvent.release_id, Task)
                .join(Task, Task.id == StageEvent.task_id)
                .where(StageEvent.release_id.in_(ids), StageEvent.to_state == TaskState.SHIPPED)
                .order_by(StageEvent.id)
            )
            for release_id, task in shipped:
                if release_id is not None and task not in members[release_id]:
                    members[release_id].append(task)
                    tasks[task.id] = task
        task_ids = list(tasks)
        if task_ids:
            firsts = await session.execute(
                select(StageEvent.task_id, func.min(StageEvent.at))
                .where(StageEvent.task_id.in_(task_ids))
                .group_by(StageEvent.task_id)
            )
            received = await session.execute(
                select(HandoffMessage.task_id, func.min(HandoffMessage.received_at))
                .where(HandoffMessage.task_id.in_(task_ids))
                .group_by(HandoffMessage.task_id)
            )
            for task_id, at in [*firsts, *received]:
                if task_id is not None and at is not None:
                    first_at[task_id] = min(at, first_at.get(task_id, at))
            moves = await session.execute(
                select(StageEvent.task_id, StageEvent.cost, StageEvent.tokens).where(
                    StageEvent.task_id.in_(task_ids), StageEvent.handoff_message_id.is_not(None)
                )
            )
            for task_id, cost, used in moves:
                spend[task_id].append((cost, used))
            for bid in await session.scalars(select(TaskBid).where(TaskBid.task_id.in_(task_ids))):
                bids[bid.task_id].append(bid)

    ships: list[ShipFact] = []
    leads: list[LeadTime] = []
    restores: list[Restore] = []
    for release in releases:
        if release.shipped_at is None:  # the query's condition: never, but typed so
            continue
        history = seals[release.id]
        ship_seal = next((s for s in history if s.trigger == SHIP), None)
        red = ship_seal is not None and ship_seal.status is SealStatus.RED
        rolled_back = release.rolled_back_at is not None and release.rolled_back_at <= end
        spent = [entry for task in members[release.id] for entry in spend[task.id]]
        costs = [cost for cost, _ in spent if cost is not None]
        counted = [t for _, t in spent if t is not None]
        ship = ShipFact(
            slug=release.slug,
            version=release.version,
            shipped_at=release.shipped_at,
            red=red,
            rolled_back=rolled_back,
            cost=sum(costs, Decimal(0)) if costs else None,
            tokens=sum(counted) if counted else None,
            moves=len(spent),
            cost_unknown=len(spent) - len(costs),
            tokens_unknown=len(spent) - len(counted),
        )
        ships.append(ship)
        for task in members[release.id]:
            if task.id in first_at:
                leads.append(LeadTime(task.slug, release.slug, first_at[task.id], ship.shipped_at))
        if ship.failed:
            restores.append(_restore(release, ship, ship_seal if red else None, history, end))

    forecasts = _forecasts(tasks.values(), bids)
    return DeliveryStats(
        guild_id=guild_id,
        days=days,
        start=start,
        end=end,
        ships=tuple(ships),
        lead_times=tuple(leads),
        restores=tuple(restores),
        forecasts=forecasts,
        earlier=(
            (await delivery_stats(db, guild_id, days, now=start, earlier=False)).forecasts
            if earlier
            else ()
        ),
        weeks=_weeks(start, end, ships, leads),
    )


def _restore(
    release: Release,
    ship: ShipFact,
    red_seal: ReleaseSeal | None,
    history: Sequence[ReleaseSeal],
    end: datetime,
) -> Restore:
    failed_at = red_seal.checked_at if red_seal is not None else ship.shipped_at
    candidates: list[tuple[datetime, str]] = []
    green = next(
        (
            s
            for s in history
            if s.trigger in RESTORING_SEALS
            and s.status is SealStatus.GREEN
            and s.checked_at > failed_at
        ),
        None,
    )
    if green is not None:
        candidates.append((green.checked_at, "green re-seal"))
    if release.rolled_back_at is not None and release.rolled_back_at <= end:
        candidates.append((max(release.rolled_back_at, failed_at), "rollback"))
    if not candidates:
        return Restore(release.slug, failed_at, None, None)
    at, how = min(candidates)
    return Restore(release.slug, failed_at, at, how)


def _forecasts(tasks: Iterable[Task], bids: dict[int, list[TaskBid]]) -> tuple[Forecast, ...]:
    per_role: dict[BidRole, list[tuple[str, Size, Size]]] = {role: [] for role in BidRole}
    for task in sorted(tasks, key=lambda t: t.slug):
        if task.actual_size is None:
            continue
        for bid in bids.get(task.id, ()):
            per_role[bid.role].append((task.slug, bid.size, task.actual_size))
    return tuple(Forecast(role, tuple(per_role[role])) for role in BidRole)


def _weeks(
    start: datetime, end: datetime, ships: Sequence[ShipFact], leads: Sequence[LeadTime]
) -> tuple[Week, ...]:
    """Every calendar week (Monday, UTC) the window's days touch, oldest first."""
    deploys: dict[date, int] = defaultdict(int)
    failures: dict[date, int] = defaultdict(int)
    days: dict[date, set[date]] = defaultdict(set)
    lead_seconds: dict[date, list[float]] = defaultdict(list)
    for ship in ships:
        week = _monday(ship.shipped_at.date())
        deploys[week] += 1
        failures[week] += ship.failed
        days[week].add(ship.shipped_at.date())
    for lead in leads:
        lead_seconds[_monday(lead.shipped_at.date())].append(lead.seconds)
    weeks = []
    week = _monday(start.date())
    while week <= end.date():
        weeks.append(
            Week(
                week,
                deploys[week],
                len(days[week]),
                failures[week],
                percentile(lead_seconds[week], 0.5),
            )
        )
        week += timedelta(days=7)
    return tuple(weeks)
