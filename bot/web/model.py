"""What the board shows, as plain data: the domain's ``BoardView`` turned into one dict that
``/deployments.json`` sends as it is and the templates render, so the page and the JSON can
never disagree. Times are ISO 8601 in UTC; ids are strings (a Discord id is wider than a
JavaScript number)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from conductor.states import TERMINAL_RELEASE_STATES, SealStatus
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
        "releases": [
            release_data(r, in_production=production is not None and r.slug == production.slug)
            for r in view.recent
            if r.state in TERMINAL_RELEASE_STATES
        ],
    }
