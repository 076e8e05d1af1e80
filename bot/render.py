"""Text shared by every cog: one line per release, one per task, the seal badges."""

from __future__ import annotations

from conductor.states import ReleaseState, TaskState
from conductor.views import ReleaseView, TaskView
from store.models import SealStatus

SEAL_BADGE = {SealStatus.GREEN: "🟢", SealStatus.RED: "🔴", SealStatus.ERROR: "⚠️"}
STATE_ICON = {
    ReleaseState.ASSEMBLING: "🧩",
    ReleaseState.ASSEMBLED: "📦",
    ReleaseState.SHIPPED: "🚀",
    ReleaseState.ABANDONED: "🗑️",
}


def member_line(task: TaskView) -> str:
    deps = ", ".join(f"`{d.slug}` ({d.state_label})" for d in task.dependencies)
    line = f"• `{task.slug}` — {task.title}"
    if task.kind:
        line += f" · {task.kind}"
    if task.branch:
        line += f" · `{task.branch}`"
    if deps:
        line += f"\n  needs {deps}"
    return line


def release_line(release: ReleaseView) -> str:
    badge = SEAL_BADGE.get(release.seal_status, "") if release.seal_status else ""
    version = f" v{release.version}" if release.version else ""
    return f"{STATE_ICON[release.state]} `{release.slug}`{version} — {release.state.value} {badge}".rstrip()


TASK_ICON = {
    TaskState.CREATED: "🌱",
    TaskState.DESIGNED: "📐",
    TaskState.BUILDING: "🔨",
    TaskState.SUBMITTED: "📨",
    TaskState.REVIEWED: "👀",
    TaskState.ASSEMBLED: "📦",
    TaskState.SHIPPED: "🚀",
}


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
