"""What the board shows, as plain data: the domain's ``BoardView`` turned into one dict that
``/deployments.json`` sends as it is and the templates render, so the page and the JSON can
never disagree. Times are ISO 8601 in UTC; ids are strings (a Discord id is wider than a
JavaScript number)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from conductor.releases.record import HistoryPage, HistoryRow, ReleaseRecord
from conductor.releases.runs.store import RunView, StepView
from conductor.seals.records import SealView
from conductor.states import (
    FINISHED_STEPS,
    TERMINAL_RELEASE_STATES,
    RunStatus,
    SealStatus,
    StepStatus,
)
from conductor.text import (
    SEAL_BADGE,
    STATE_ICON,
    TASK_ICON,
    half_rollback_text,
    seal_badge,
    short_sha,
)
from conductor.views import BoardView, LockView, ReleaseView, TaskView

#: where a seal's screenshot is served: this prefix, then the path its record names
SCREENSHOTS = "/deployments/screenshots/"


@dataclass(frozen=True, slots=True)
class GuildRef:
    id: int
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"id": str(self.id), "name": self.name}


def when(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def screenshot_url(stored: str) -> str:
    """The board's URL of a screenshot its seal record names (relative to the evidence
    root); the route refuses any path that leaves the root."""
    return SCREENSHOTS + quote(stored, safe="/")


def task_data(task: TaskView) -> dict[str, Any]:
    return {
        "slug": task.slug,
        "title": task.title,
        "kind": task.kind,
        "branch": task.branch,
        "state": task.state.value,
        "icon": TASK_ICON[task.state],
        "author": task.author_name,
        "needs": [{"slug": d.slug, "state": d.state_label} for d in task.dependencies],
    }


def check_data(check: dict[str, Any]) -> dict[str, Any]:
    stored = check.get("screenshot_file")
    return {
        "path": str(check.get("path", "?")),
        "kind": str(check.get("kind", "page")),
        "ok": bool(check.get("ok", False)),
        "status": check.get("status"),
        "reason": check.get("reason"),
        "duration_ms": check.get("duration_ms"),
        "screenshot": screenshot_url(stored) if isinstance(stored, str) and stored else None,
    }


def seal_data(release: ReleaseView) -> dict[str, Any] | None:
    status = release.seal_status
    if status is None:
        return None
    checks = [check_data(c) for c in release.seal_results]
    return {
        "status": status.value,
        "badge": SEAL_BADGE[status],
        "summary": release.seal_summary,
        "error": release.seal_error if status is SealStatus.ERROR else None,
        "checked_at": when(release.seal_checked_at),
        "duration_ms": release.seal_duration_ms,
        "passed": sum(1 for c in checks if c["ok"]),
        "checks": checks,
        "failed": [c for c in checks if not c["ok"]],
    }


def release_data(release: ReleaseView, *, in_production: bool = False) -> dict[str, Any]:
    return {
        "slug": release.slug,
        "name": release.name,
        "state": release.state.value,
        "icon": STATE_ICON[release.state],
        "version": release.version,
        "merge_sha": release.merge_sha,
        "short_sha": short_sha(release.merge_sha) if release.merge_sha else None,
        "rc_branch": release.rc_branch,
        "opened_by": release.opened_by,
        "opened_at": when(release.opened_at),
        "assembled_at": when(release.assembled_at),
        "shipped_by": release.shipped_by,
        "shipped_at": when(release.shipped_at),
        "abandoned_at": when(release.abandoned_at),
        "abandon_reason": release.abandon_reason,
        "rolled_back_by": release.rolled_back_by,
        "rolled_back_at": when(release.rolled_back_at),
        "rollback_reason": release.rollback_reason,
        "in_production": in_production,
        #: ``🟢 green``, ``🔴 red``, ``⚠️ error`` or ``⚪ not sealed``
        "badge": seal_badge(release),
        "seal": seal_data(release),
        "members": [task_data(m) for m in release.members],
    }


def lock_data(lock: LockView) -> dict[str, Any]:
    return {"holder": lock.holder, "reason": lock.reason, "since": when(lock.since)}


def board_data(view: BoardView, guild: GuildRef, guilds: tuple[GuildRef, ...]) -> dict[str, Any]:
    """The whole board of ``guild``; ``guilds``: every guild the board can show."""
    status = view.status
    production = status.last_shipped
    return {
        "guild": guild.to_dict(),
        "guilds": [g.to_dict() for g in guilds],
        "lock": lock_data(status.lock) if status.lock is not None else None,
        "production": release_data(production, in_production=True) if production else None,
        "held": status.held,
        #: a rollback of production's release stopped half way: what main and production are
        "half_rollback": half_rollback_text(status.half) if status.half is not None else None,
        "active": release_data(status.active) if status.active is not None else None,
        "blockers": list(status.blockers),
        #: the run in progress (a ship, a rollback, a redeploy), or None
        "running": run_data(view.running) if view.running is not None else None,
        "releases": [
            release_data(r, in_production=production is not None and r.slug == production.slug)
            for r in view.recent
            if r.state in TERMINAL_RELEASE_STATES
        ],
    }


#: a run's step in words (the driver's words for them)
STEP_NAMES = {
    "revert": "revert",
    "deploy": "deploy",
    "health": "health gate",
    "ship": "ship",
    "flip": "state change",
    "seal": "seal",
    "notes": "notes",
}


def step_data(step: StepView) -> dict[str, Any]:
    summary = step.outcome.get("summary")
    return {
        "name": step.name,
        "words": STEP_NAMES.get(step.name, step.name),
        "status": step.status.value,
        "started_at": when(step.started_at),
        "finished_at": when(step.finished_at),
        "duration_ms": step.duration_ms,
        "summary": str(summary) if summary else None,
    }


def run_data(run: RunView) -> dict[str, Any]:
    """A run with its steps; ``current``: the step it is at (running, else the first not
    finished), None once it ended."""
    current = None
    if run.status is RunStatus.RUNNING:
        current = next(
            (s for s in run.steps if s.status is StepStatus.RUNNING),
            next((s for s in run.steps if s.status not in FINISHED_STEPS), None),
        )
    return {
        "id": run.id,
        "kind": run.kind.value,
        "status": run.status.value,
        "release": run.release_slug,
        "version": run.version,
        "restores_version": run.restores_version,
        "reason": run.reason,
        "error": run.error,
        "started_by": run.started_by,
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "duration_ms": round((run.finished_at - run.started_at).total_seconds() * 1000)
        if run.finished_at is not None
        else None,
        "current": step_data(current) if current is not None else None,
        #: the current step's place among the run's steps, from 1
        "position": run.steps.index(current) + 1 if current is not None else None,
        "steps": [step_data(s) for s in run.steps],
    }


def history_row_data(row: HistoryRow) -> dict[str, Any]:
    status = row.seal_status
    return {
        "id": row.id,
        "slug": row.slug,
        "name": row.name,
        "state": row.state.value,
        "icon": STATE_ICON[row.state],
        "version": row.version,
        "event": row.event,
        "at": when(row.at),
        "seal": status.value if status is not None else None,
        "badge": f"{SEAL_BADGE[status]} {status.value}" if status is not None else None,
        "seal_summary": row.seal_summary,
        "members": row.members,
    }


def history_data(
    page: HistoryPage,
    guild: GuildRef,
    *,
    before: int | None,
    states: tuple[str, ...],
    seals: tuple[str, ...],
) -> dict[str, Any]:
    """A page of the history; ``older``: the cursor of the next page (None: the last)."""
    return {
        "guild": guild.to_dict(),
        "before": before,
        "states": list(states),
        "seals": list(seals),
        #: the filter in words (``rolled back``, ``sealed red``)
        "filter_words": [s.replace("_", " ") for s in states] + [f"sealed {s}" for s in seals],
        "releases": [history_row_data(r) for r in page.rows],
        "older": page.older,
    }


def seal_record_data(seal: SealView) -> dict[str, Any]:
    checks = [check_data(c) for c in seal.results]
    return {
        "status": seal.status.value,
        "badge": f"{SEAL_BADGE[seal.status]} {seal.status.value}",
        "summary": seal.summary,
        "error": seal.error,
        "trigger": seal.trigger,
        "sealed_by": seal.sealed_by,
        "checked_at": when(seal.checked_at),
        "duration_ms": seal.duration_ms,
        "passed": sum(1 for c in checks if c["ok"]),
        "checks": checks,
    }


def commit_link(template: str | None, sha: str | None) -> str | None:
    """``[web] commit_url`` with the SHA in it (None without either)."""
    if template is None or not sha:
        return None
    return template.replace("{sha}", quote(sha, safe=""))


def thread_link(guild_id: int, thread_id: int | None) -> str | None:
    """The release's thread in Discord (it opens in the app or the browser)."""
    if thread_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{thread_id}"


def record_data(
    record: ReleaseRecord, guild: GuildRef, *, commit_url: str | None = None
) -> dict[str, Any]:
    """One release's page: its board entry, with its members' notes, every seal, every run
    (``running``: the one in progress, if any), its RC's tests and its links."""
    view = record.release
    release = release_data(view)
    for member, task in zip(release["members"], view.members, strict=True):
        member["note"] = task.last_note
    former = []
    for task in record.former:
        left = task_data(task)
        left["note"] = task.last_note
        former.append(left)
    tests = view.rc_tests
    runs = [run_data(r) for r in record.runs]
    return {
        "guild": guild.to_dict(),
        "id": record.id,
        "release": release,
        #: the tasks that rode it and left it (rolled back, abandoned, removed), as they are now
        "former": former,
        "rc_head": view.rc_head,
        "rc_tests": {
            "status": tests.status.value,
            "passed": tests.passed,
            "at": when(tests.at),
            "duration_ms": tests.duration_ms,
            "tail": tests.tail,
        }
        if tests is not None
        else None,
        "seals": [seal_record_data(s) for s in record.seals],
        "runs": runs,
        "running": next((r for r in runs if r["status"] == "running"), None),
        "thread_url": thread_link(record.guild_id, view.notes_thread_id),
        "commit_url": commit_link(commit_url, view.merge_sha or view.rc_head),
    }
