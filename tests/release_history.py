"""A long release history written straight into the tables (shipping 200 releases through the
pipeline is slow): release ``i`` (1 … n, ids in that order) cycles through shipped green,
shipped red, rolled back (a ship and a rollback run) and abandoned; the newest is assembling.
Each has ``i % 4`` members and the ship runs of the shipped ones their five steps. Another
guild's releases sit beside them, so the guild filter is never the whole table.
``tests/bot/web/test_pages*.py`` page through it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from conductor.states import (
    ReleaseState,
    RunKind,
    RunStatus,
    SealStatus,
    StepStatus,
    TaskState,
)
from store.db import Database
from store.models import Release, ReleaseSeal, Run, RunStep, Task

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
OTHER = 2002
#: what release ``i`` became, by ``i % 4``
CYCLE = (
    ReleaseState.ABANDONED,
    ReleaseState.SHIPPED,
    ReleaseState.SHIPPED,
    ReleaseState.ROLLED_BACK,
)
SHIP_STEPS = ("deploy", "health", "ship", "seal", "notes")


@dataclass(frozen=True, slots=True)
class Seeded:
    #: every release of the guild as (id, slug, state), oldest first
    releases: tuple[tuple[int, str, ReleaseState], ...]

    def newest_first(self) -> list[tuple[int, str, ReleaseState]]:
        return list(reversed(self.releases))


def slug_of(i: int) -> str:
    return f"2026-r{i:04d}"


async def seed_releases(db: Database, n: int, guild_id: int) -> Seeded:
    releases: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    seals: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    made = []
    version = 0
    task_id = 0
    for i in range(1, n + 1):
        opened = START + timedelta(hours=6 * i)
        state = ReleaseState.ASSEMBLING if i == n else CYCLE[i % 4]
        shipped = state in (ReleaseState.SHIPPED, ReleaseState.ROLLED_BACK)
        version += shipped
        red = state is ReleaseState.SHIPPED and i % 8 == 2
        status = (SealStatus.RED if red else SealStatus.GREEN) if shipped else None
        summary = ("1 of 3 failed: /signin" if red else "3/3 checks passed") if shipped else None
        results = [
            {"path": "/up", "kind": "health", "ok": True, "status": 200, "duration_ms": 40},
            {"path": "/signin", "kind": "page", "ok": not red, "status": 500 if red else 200},
            {"path": "/tasks", "kind": "page", "ok": True, "status": 200},
        ]
        releases.append(
            {
                "id": i,
                "guild_id": guild_id,
                "slug": slug_of(i),
                "name": f"train {i}",
                "state": state,
                "opened_by": "olga",
                "opened_at": opened,
                "assembled_at": opened + timedelta(hours=1) if shipped else None,
                "shipped_at": opened + timedelta(hours=2) if shipped else None,
                "shipped_by": "olga" if shipped else None,
                "abandoned_at": opened + timedelta(hours=1)
                if state is ReleaseState.ABANDONED
                else None,
                "abandon_reason": "superseded" if state is ReleaseState.ABANDONED else None,
                "rolled_back_at": opened + timedelta(hours=3)
                if state is ReleaseState.ROLLED_BACK
                else None,
                "rolled_back_by": "olga" if state is ReleaseState.ROLLED_BACK else None,
                "rollback_reason": "checkout broke" if state is ReleaseState.ROLLED_BACK else None,
                "version": version if shipped else None,
                "merge_sha": f"{i:040x}" if shipped else None,
                "rc_merges": {},
                "seal_status": status,
                "seal_summary": summary,
                "seal_checked_at": opened + timedelta(hours=2, minutes=5) if shipped else None,
                "seal_duration_ms": 4200 if shipped else None,
                "seal_results": results if shipped else None,
                "row_version": 1,
            }
        )
        made.append((i, slug_of(i), state))
        for m in range(i % 4):
            task_id += 1
            tasks.append(
                {
                    "id": task_id,
                    "guild_id": guild_id,
                    "slug": f"t{i:04d}-{m}",
                    "title": f"Task {m} of train {i}",
                    "kind": "feature",
                    "branch": f"feat/t{i:04d}-{m}",
                    "state": TaskState.SHIPPED
                    if shipped
                    else TaskState.ASSEMBLED
                    if state is ReleaseState.ASSEMBLING
                    else TaskState.REVIEWED,
                    "release_id": i if state is not ReleaseState.ABANDONED else None,
                    "release_position": m,
                    "author_name": "machoke",
                    "extra": {},
                    "created_at": opened,
                    "updated_at": opened,
                    "state_since": opened,
                }
            )
        if shipped:
            seals.append(
                {
                    "release_id": i,
                    "status": status,
                    "summary": summary,
                    "checked_at": opened + timedelta(hours=2, minutes=5),
                    "duration_ms": 4200,
                    "results": results,
                    "trigger": "ship",
                    "sealed_by": "olga",
                }
            )
            kinds = [RunKind.SHIP] + (
                [RunKind.ROLLBACK] if state is ReleaseState.ROLLED_BACK else []
            )
            for k, kind in enumerate(kinds):
                run_id = len(runs) + 1
                began = opened + timedelta(hours=2 + k)
                runs.append(
                    {
                        "id": run_id,
                        "guild_id": guild_id,
                        "release_id": i,
                        "status": RunStatus.DONE,
                        "kind": kind,
                        "version": version,
                        "started_by": "olga",
                        "started_at": began,
                        "finished_at": began + timedelta(seconds=50),
                        "told_at": began + timedelta(seconds=50),
                    }
                )
                for s, name in enumerate(SHIP_STEPS):
                    steps.append(
                        {
                            "run_id": run_id,
                            "name": name,
                            "status": StepStatus.DONE,
                            "started_at": began + timedelta(seconds=10 * s),
                            "finished_at": began + timedelta(seconds=10 * s + 7),
                            "outcome": {"summary": f"{name} ok"},
                        }
                    )
    for j in range(1, 11):  # another guild's, interleaved by id after these
        releases.append(
            {
                "id": n + j,
                "guild_id": OTHER,
                "slug": slug_of(j),
                "name": "elsewhere",
                "state": ReleaseState.ABANDONED,
                "opened_by": "other",
                "opened_at": START,
                "abandoned_at": START,
                "rc_merges": {},
                "row_version": 1,
            }
        )
    keys = set().union(*releases)
    releases = [{**dict.fromkeys(keys), **row} for row in releases]
    async with db.engine.begin() as conn:
        for table, rows in (
            (Release, releases),
            (Task, tasks),
            (ReleaseSeal, seals),
            (Run, runs),
            (RunStep, steps),
        ):
            if rows:
                for k in range(0, len(rows), 500):
                    await conn.execute(insert(table), rows[k : k + 500])
        if db.is_postgresql:
            for name in ("releases", "tasks", "release_seals", "ship_runs", "ship_steps"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {name}))"
                )
    return Seeded(tuple(made))
