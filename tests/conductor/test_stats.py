"""The delivery metrics over the seeded sixty days (``tests/stats_history.py``), every figure
worked out by hand in the comments, for the default 30 days and for 60; the percentile, the
Four Keys buckets and the refusal of a window out of range."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from conductor.errors import InvalidInput
from conductor.states import BidRole
from conductor.stats import (
    DAYS_MAX,
    Week,
    delivery_stats,
    duration_bucket,
    duration_text,
    failure_bucket,
    frequency_bucket,
    percentile,
)
from store.db import Database
from tests.stats_history import GUILD, NOW, seed_history

H = 3600.0


def hours(values: list[float]) -> list[float]:
    return [round(v / H, 6) for v in values]


async def test_thirty_days_of_the_seeded_history(db: Database) -> None:
    await seed_history(db)
    stats = await delivery_stats(db, GUILD, now=NOW)
    assert (stats.days, stats.start, stats.end) == (30, NOW - timedelta(days=30), NOW)

    # Ships 2026-02-02 12:00 .. 2026-03-04 12:00: delta (25 d ago), epsilon (20), zeta (10),
    # eta (5), theta (1). Not gamma (40 d), not the abandoned or active release, not the
    # other guild's ship 2 d ago.
    assert [s.slug[11:] for s in stats.ships] == ["delta", "epsilon", "zeta", "eta", "theta"]
    # 5 ships over 30 days: 5 * 7 / 30 = 1.1667 a week
    assert stats.deploys == 5
    assert stats.per_week == pytest.approx(7 / 6)
    # Weeks (Monday): Feb 2 (delta, Sat 7th), Feb 9 (epsilon, Thu 12th), Feb 16 (zeta, Sun
    # 22nd), Feb 23 (eta, Fri 27th), Mar 2 (theta, Tue 3rd): one day with a deploy each.
    # Median days per week 1 < 3: not daily; the median week has a deploy: weekly.
    assert [(w.start, w.deploys, w.deploy_days, w.failures) for w in stats.weeks] == [
        (date(2026, 2, 2), 1, 1, 0),
        (date(2026, 2, 9), 1, 1, 1),
        (date(2026, 2, 16), 1, 1, 0),
        (date(2026, 2, 23), 1, 1, 1),
        (date(2026, 3, 2), 1, 1, 0),
    ]
    assert stats.frequency_bucket == "weekly"

    # Lead times (first handoff → ship), hours: t4a 20, t4b 50, t5a 30, t6a 10, t6b 70 (its
    # rejected first handoff, an hour before its first move), t7a 40, t8a 5, t8b 100.
    # Sorted 5 10 20 30 40 50 70 100 (n 8), ranks from 0: median at rank 3.5 = (30 + 40) / 2 = 35 h;
    # p90 at rank 0.9 * 7 = 6.3: 70 + 0.3 * (100 - 70) = 79 h. 35 h: "one week".
    assert sorted(hours([lead.seconds for lead in stats.lead_times])) == [
        5, 10, 20, 30, 40, 50, 70, 100,
    ]  # fmt: skip
    assert {lead.task: lead.release[11:] for lead in stats.lead_times}["t6b"] == "zeta"
    assert stats.lead_median == 35 * H
    assert stats.lead_p90 == pytest.approx(79 * H)
    assert stats.lead_bucket == "one week"
    # per week: delta (20, 50) 35; epsilon 30; zeta (10, 70) 40; eta 40; theta (5, 100) 52.5
    assert [w.lead_median and w.lead_median / H for w in stats.weeks] == [35, 30, 40, 40, 52.5]

    # Failures: epsilon (red, then rolled back: once), eta (red). Zeta's seal was an error
    # (the suite could not run): not a failure. 2 / 5 = 40 %: "16-45%".
    assert [s.slug[11:] for s in stats.failures] == ["epsilon", "eta"]
    assert stats.failure_rate == 0.4
    assert stats.failure_bucket == "16-45%"

    # Restores: epsilon red at its ship seal, red again an hour later, rolled back 3 h after
    # the first red: 3 h. Eta: red, nothing since: open. Median 3 h: "one day".
    assert [(r.release[11:], r.how, r.seconds) for r in stats.restores] == [
        ("epsilon", "rollback", 3 * H),
        ("eta", None, None),
    ]
    assert [r.release[11:] for r in stats.still_open] == ["eta"]
    assert stats.restore_median == 3 * H
    assert stats.restore_bucket == "one day"

    # Forecasts (tasks with a measured size; t7a has none, so PM's M on it is not counted):
    # PM: t4a M=M ✓, t4b M≠L (L/M = 2), t5a S=S ✓, t6b L≠XL (2), t8b L=L ✓: 3 / 5;
    #     calibration 2 ** mean(log2 of 1, 2, 1, 2, 1) = 2 ** (2 / 5) = 1.3195
    # PO: t4a S≠M (2), t6a M=M ✓, t8a M≠S (1/2), t8b XL≠L (1/2): 1 / 4;
    #     2 ** ((1 + 0 - 1 - 1) / 4) = 2 ** -0.25 = 0.8409
    # Dev: t4a ✓, t4b ✓, t5a M≠S (1/2), t6a ✓, t6b ✓, t8a ✓, t8b ✓: 6 / 7; 2 ** (-1 / 7)
    pm, po, dev = (stats.forecast(role) for role in (BidRole.PM, BidRole.PO, BidRole.DEV))
    assert (pm.hits, pm.count, po.hits, po.count, dev.hits, dev.count) == (3, 5, 1, 4, 6, 7)
    assert [task for task, _, _ in pm.bids] == ["t4a", "t4b", "t5a", "t6b", "t8b"]
    assert pm.hit_rate == 0.6
    assert pm.calibration == pytest.approx(2**0.4)  # 1.3195
    assert po.calibration == pytest.approx(2**-0.25)  # 0.8409
    assert dev.calibration == pytest.approx(2 ** (-1 / 7))  # 0.9057
    # ... and over time: the 30 days before (alpha, beta, gamma's tasks): PM t1a XL=XL 1 / 1,
    # ×1.0; PO t2a S=S 1 / 1, ×1.0; Dev t1a L≠XL (2), t3a M=M: 1 / 2, 2 ** (1 / 2) = 1.4142
    before = [stats.earlier_forecast(role) for role in (BidRole.PM, BidRole.PO, BidRole.DEV)]
    assert [(f.hits, f.count) for f in before] == [(1, 1), (1, 1), (1, 2)]
    assert [f.calibration for f in before] == pytest.approx([1.0, 1.0, 2**0.5])

    # Cost: delta 1.50 + 2.00 + 3.00 (t4b's second move unknown) = 6.50; epsilon 0.75; zeta
    # nothing reported (4 unknown moves): unknown, not $0; eta 12.00; theta 0.30 + 9.45 =
    # 9.75. Total 29.00 over the 4 ships that reported any: mean 7.25; 5 moves unknown. The
    # ship moves (no handoff) are not spend, and not unknown either.
    assert [(s.cost, s.cost_unknown) for s in stats.ships] == [
        (Decimal("6.50"), 1), (Decimal("0.75"), 0), (None, 4), (Decimal("12.00"), 0),
        (Decimal("9.75"), 0),
    ]  # fmt: skip
    assert (stats.cost_total, stats.cost_mean, stats.cost_unknown) == (
        Decimal("29.00"), Decimal("7.25"), 5,
    )  # fmt: skip
    assert stats.tokens_total == 290_000  # 10,000 tokens a dollar in the seed


async def test_sixty_days_of_the_seeded_history(db: Database) -> None:
    await seed_history(db)
    stats = await delivery_stats(db, GUILD, 60, now=NOW)

    # 2026-01-03 12:00 ..: alpha (55 d ago), beta (45), gamma (40) join: 8 ships,
    # 8 * 7 / 60 = 0.9333 a week
    assert [s.slug[11:] for s in stats.ships] == [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ]  # fmt: skip
    assert stats.per_week == pytest.approx(56 / 60)
    # ten weeks from Mon Dec 29 to Mon Mar 2; Dec 29 and Jan 26 without a deploy: the week
    # median of (0, 0, 1 × 8) is 1: weekly
    assert [w.deploys for w in stats.weeks] == [0, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    assert stats.weeks[0].start == date(2025, 12, 29)
    assert stats.frequency_bucket == "weekly"

    # Lead times, hours: + t1a 200, t2a 24, t3a 12, t3b 8 (gamma's members, sent back by its
    # rollback, still count from their ship move). Sorted 5 8 10 12 20 24 30 40 50 70 100
    # 200 (n 12), ranks from 0: median at 5.5 = (24 + 30) / 2 = 27 h; p90 at 0.9 * 11 = 9.9,
    # between 70 (rank 9) and 100 (rank 10): 70 + 0.9 * 30 = 97 h
    assert len(stats.lead_times) == 12
    assert stats.lead_median == 27 * H
    assert stats.lead_p90 == pytest.approx(97 * H)

    # Failures: beta (red), gamma (green, rolled back), epsilon, eta: 4 / 8 = 50 %: "46-60%"
    assert [s.slug[11:] for s in stats.failures] == ["beta", "gamma", "epsilon", "eta"]
    assert stats.failure_rate == 0.5
    assert stats.failure_bucket == "46-60%"
    # Restores: beta red → green re-seal 6 h; gamma from its ship (no red seal) to its
    # rollback 2 days later: 48 h; epsilon 3 h; eta open. Median of 3, 6, 48: 6 h.
    assert [(r.release[11:], r.how, r.seconds and r.seconds / H) for r in stats.restores] == [
        ("beta", "green re-seal", 6),
        ("gamma", "rollback", 48),
        ("epsilon", "rollback", 3),
        ("eta", None, None),
    ]
    assert stats.restore_median == 6 * H

    # Forecasts: + t1a (XL): PM XL ✓, Dev L≠XL (2); t2a (S): PO S ✓; t3a (M): Dev M ✓
    # PM 4 / 6, 2 ** (2 / 6); PO 2 / 5, 2 ** (-1 / 5); Dev 7 / 9, 2 ** 0 = 1.0
    pm, po, dev = (stats.forecast(role) for role in (BidRole.PM, BidRole.PO, BidRole.DEV))
    assert (pm.hits, pm.count, po.hits, po.count, dev.hits, dev.count) == (4, 6, 2, 5, 7, 9)
    assert pm.calibration == pytest.approx(2 ** (1 / 3))  # 1.2599
    assert po.calibration == pytest.approx(2**-0.2)  # 0.8706
    assert dev.calibration == pytest.approx(1.0)

    # Cost: + alpha 25.00, beta 2.00, gamma 0.40 + 0.60 + 1.00 = 2.00 (1 unknown): total
    # 58.00 over 7 ships: 8.2857 → $8.29; 6 moves unknown
    assert (stats.cost_total, stats.cost_mean, stats.cost_unknown) == (
        Decimal("58.00"), Decimal("8.29"), 6,
    )  # fmt: skip


async def test_a_guild_without_ships_has_no_figures_but_its_weeks(db: Database) -> None:
    stats = await delivery_stats(db, GUILD, 7, now=NOW)
    assert (stats.deploys, stats.lead_median, stats.failure_rate, stats.restore_median) == (
        0, None, None, None,
    )  # fmt: skip
    assert (stats.cost_total, stats.cost_mean, stats.frequency_bucket) == (None, None, "yearly")
    assert [f.hit_rate for f in stats.forecasts] == [None, None, None]
    assert [w.start for w in stats.weeks] == [date(2026, 2, 23), date(2026, 3, 2)]


@pytest.mark.parametrize("days", [0, -1, DAYS_MAX + 1])
async def test_a_window_out_of_range_is_refused(db: Database, days: int) -> None:
    with pytest.raises(InvalidInput, match=rf"1 to 365 \(default 30\); {days} is out of range"):
        await delivery_stats(db, GUILD, days, now=NOW)


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1, 2, 3, 10], 0.5) == 2.5
    assert percentile([10, 1, 3, 2], 0.9) == pytest.approx(7.9)  # 3 + 0.7 * (10 - 3)


def _weeks(*days_with_deploys: int, start: date = date(2026, 1, 5)) -> list[Week]:
    return [
        Week(start + timedelta(weeks=n), days, days, 0, None)
        for n, days in enumerate(days_with_deploys)
    ]


def test_the_four_keys_buckets() -> None:
    # daily: the median week has 3 days with a deploy
    assert frequency_bucket(_weeks(3, 4, 0, 5)) == "daily"
    assert frequency_bucket(_weeks(3, 2, 0, 5)) == "weekly"  # median 2.5
    # monthly: the median week's month has a week with a deploy (Jan 5 .. Feb 23: one in
    # January and one in February → 1 for every week); with none in February, the weeks'
    # values are 1 × 4, 0 × 4: median 0.5, yearly
    assert frequency_bucket(_weeks(1, 0, 0, 0, 1, 0, 0, 0)) == "monthly"
    assert frequency_bucket(_weeks(1, 0, 0, 0, 0, 0, 0, 0)) == "yearly"
    assert [duration_bucket(h * H) for h in (23.9, 24, 167, 729, 4379, 4380)] == [
        "one day", "one week", "one week", "one month", "six months", "one year",
    ]  # fmt: skip
    assert [failure_bucket(r) for r in (0.15, 0.16, 0.459, 0.46, 0.6, 0.61, 1.0)] == [
        "0-15%", "16-45%", "16-45%", "46-60%", "46-60%", "61-100%", "61-100%",
    ]  # fmt: skip
    assert [duration_text(s) for s in (None, 40, 720, 5 * H, 5 * H + 1200, 79 * H)] == [
        "—", "40 s", "12 min", "5 h", "5 h 20 min", "3 d 7 h",
    ]  # fmt: skip
