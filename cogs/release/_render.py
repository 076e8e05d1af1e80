"""Release views → Discord text and embeds."""

from __future__ import annotations

import discord

from conductor.states import ReleaseState
from conductor.views import ReleaseView, StatusView, TaskView
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


def status_embed(status: StatusView) -> discord.Embed:
    active = status.active
    if active is None:
        embed = discord.Embed(
            title="No active release", description="Open one with `/release open`."
        )
    else:
        members = "\n".join(member_line(m) for m in active.members) or "_no members yet_"
        embed = discord.Embed(title=release_line(active), description=members[:4000])
        embed.add_field(
            name="Opened", value=f"by {active.opened_by} <t:{int(active.opened_at.timestamp())}:R>"
        )
        if status.blockers:
            embed.add_field(name="Next", value="\n".join(status.blockers)[:1000], inline=False)
    if status.last_shipped is not None:
        embed.add_field(name="Last shipped", value=release_line(status.last_shipped), inline=False)
    return embed
