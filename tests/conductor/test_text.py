"""The words of the lock, production and the held train: who, why, since when, what runs and
what failed, each on its line whatever the user typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conductor.states import ReleaseState, SealStatus
from conductor.text import (
    ago,
    failing_checks,
    half_rollback_text,
    held_over_line,
    held_train_text,
    hold_text,
    lock_line,
    locked_refusal,
    production_line,
)
from conductor.views import HalfRollback, Hold, LockView, ReleaseView

SINCE = datetime(2026, 12, 1, 14, 20, tzinfo=UTC)
TS = int(SINCE.timestamp())


def release(**fields: Any) -> ReleaseView:
    base: dict[str, Any] = {
        "slug": "2026-12-01-train",
        "name": "train",
        "state": ReleaseState.SHIPPED,
        "opened_by": "olga",
        "opened_by_id": 501,
        "opened_at": SINCE,
        "version": 3,
        "shipped_at": SINCE,
        "shipped_by": "olga",
    }
    return ReleaseView(**(base | fields))


def test_ago_says_how_long_in_the_largest_units() -> None:
    assert ago(SINCE, SINCE + timedelta(seconds=59)) == "0 min"
    assert ago(SINCE, SINCE + timedelta(minutes=3)) == "3 min"
    assert ago(SINCE, SINCE + timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert ago(SINCE, SINCE + timedelta(days=4, hours=1, minutes=7)) == "4 d 1 h"
    assert ago(SINCE, SINCE - timedelta(minutes=1)) == "0 min"  # clocks a little apart


def test_the_lock_line_and_refusal_name_who_why_and_since_when() -> None:
    lock = LockView(1, "olga", 501, "db migration", SINCE)
    assert lock_line(lock) == (
        f"🔒 **Locked** by olga since <t:{TS}:f> (<t:{TS}:R>) — db migration"
    )
    said = locked_refusal(lock, "ship", yours=False, now=SINCE + timedelta(hours=1, minutes=2))
    assert said == (
        "🔒 Can't ship: the release train is locked by olga since 2026-12-01 14:20 UTC "
        "(1 h 2 min ago) — db migration. Ask them to `/release unlock`, or take the lock over "
        "with `/release lock` (it asks you to confirm)."
    )
    mine = locked_refusal(lock, "open a release", yours=True, now=SINCE)
    assert "locked by you since" in mine and mine.endswith(
        "It is your lock: `/release unlock` first."
    )


def test_user_text_in_a_lock_stays_on_one_clipped_line() -> None:
    lock = LockView(1, "n" * 300, 501, "line one\n**line** two\r\n" + "x" * 1000, SINCE)
    line = lock_line(lock)
    assert "\n" not in line and "line one **line** two x" in line
    assert len(line) < 450 and line.endswith("…")
    said = locked_refusal(lock, "ship", yours=False, now=SINCE)
    assert "\n" not in said and len(said) < 700


def test_production_line_says_what_runs_its_merge_its_seal_and_who_shipped_it() -> None:
    view = release(merge_sha="1a2b3c4d5e6f7a8b9c0d", seal_status=SealStatus.GREEN)
    assert production_line(view) == (
        f"🚀 `2026-12-01-train` v3 · merge `1a2b3c4d5e` · 🟢 green · shipped by olga <t:{TS}:f>"
    )
    bare = release(seal_status=None, shipped_by=None)
    assert production_line(bare) == f"🚀 `2026-12-01-train` v3 · ⚪ not sealed · shipped <t:{TS}:f>"


def test_failing_checks_list_each_failure_and_count_the_rest() -> None:
    results = tuple(
        {"path": f"/p`{i}", "ok": i == 0, "reason": f"status 50{i}\nmore"} for i in range(11)
    )
    lines = failing_checks(release(seal_status=SealStatus.RED, seal_results=results))
    assert lines[0] == "• `/p'1` — status 501 more"  # no backtick closes the code span early
    assert len(lines) == 9 and lines[-1] == "• … and 2 more"
    old = release(seal_status=SealStatus.RED, seal_summary="1 of 6 failed: /up (status 503)")
    assert failing_checks(old) == ["• 1 of 6 failed: /up (status 503)"]  # no checks kept
    error = release(seal_status=SealStatus.ERROR, seal_error="Chromium not found")
    assert failing_checks(error) == ["• the seal could not run: Chromium not found"]


def test_the_held_train_and_the_line_of_a_release_opened_over_it() -> None:
    held = release(
        seal_status=SealStatus.RED,
        seal_checked_at=SINCE,
        seal_results=({"path": "/up", "ok": False, "reason": "status 503"},),
    )
    assert held_train_text(held) == (
        "⚠️ The train is held: production runs `2026-12-01-train` v3, sealed 🔴 red on "
        "2026-12-01 14:20 UTC, neither re-sealed green nor rolled back.\n"
        "Failing checks:\n• `/up` — status 503"
    )
    assert held_over_line(release()) is None
    over = release(
        held_over_slug="2026-11-30-red",
        held_over_seal=SealStatus.RED,
        held_confirmed_by="carl",
        held_confirmed_at=SINCE,
    )
    assert held_over_line(over) == (
        f"⚠️ Opened over 🔴 red `2026-11-30-red` — confirmed by carl <t:{TS}:f>"
    )


def half(step: str, *, interrupted: bool = False) -> HalfRollback:
    return HalfRollback(
        release_slug="2026-12-01-train",
        version=3,
        run="run 9",
        started_by="olga",
        revert="1a2b3c4d5e6f",
        step=step,  # type: ignore[arg-type]
        interrupted=interrupted,
        why="it stopped",
    )


def test_a_rollback_stopped_half_way_says_main_and_production_by_where_it_stopped() -> None:
    train = "`2026-12-01-train` v3"
    assert half_rollback_text(half("deploy")) == (
        "`main` and production disagree: `main` was reverted (`1a2b3c4d5e`) but production "
        f"still runs {train}: the rollback's deploy failed (run 9: it stopped)."
    )
    assert half_rollback_text(half("deploy", interrupted=True)) == (
        "`main` and production may disagree: `main` was reverted (`1a2b3c4d5e`) but production "
        f"may still run {train}: the rollback's deploy was interrupted (run 9)."
    )
    assert half_rollback_text(half("health")) == (
        "`main` was reverted (`1a2b3c4d5e`) and deployed, but production is not healthy and "
        f"{train} still reads shipped: the rollback stopped at its health gate (run 9: it "
        "stopped)."
    )
    assert half_rollback_text(half("flip")) == (
        f"`main` was reverted (`1a2b3c4d5e`) and deployed, but {train} still reads shipped: "
        "the rollback stopped at its flip step (run 9: it stopped)."
    )
    both = hold_text(
        Hold(release(seal_status=SealStatus.RED, seal_checked_at=SINCE), True, half("deploy"))
    ).splitlines()
    assert both[0].startswith("⚠️ The train is held: production runs `2026-12-01-train` v3")
    assert both[-2] == f"And the rollback of {train} stopped half way. " + half_rollback_text(
        half("deploy")
    )
    over = release(
        held_over_slug="2026-11-30-red",
        held_over_seal=SealStatus.RED,
        held_over_revert="1a2b3c4d5e6f",
        held_confirmed_by="carl",
        held_confirmed_at=SINCE,
    )
    assert held_over_line(over) == (
        "⚠️ Opened over 🔴 red `2026-11-30-red` half rolled back (`main` had its revert "
        f"`1a2b3c4d5e`; the rollback never finished) — confirmed by carl <t:{TS}:f>"
    )
