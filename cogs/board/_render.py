"""The deployments board: the active release and the latest releases with their seal badges."""

from __future__ import annotations

import discord

from conductor.states import ReleaseState
from conductor.text import clip, member_line, release_line
from conductor.views import ReleaseView, StatusView

TITLE = "🚂 Deployments"
MAX_MEMBERS = 20


def board_embed(status: StatusView, recent: tuple[ReleaseView, ...]) -> discord.Embed:
    """The pinned board. Deterministic for the same data (no clock in it), so an unchanged
    board renders identically and is not edited."""
    active = status.active
    if active is None:
        body = "No active release. An operator opens one with `/release open`."
    else:
        lines = [member_line(m) for m in active.members[:MAX_MEMBERS]]
        if len(active.members) > MAX_MEMBERS:
            lines.append(f"… and {len(active.members) - MAX_MEMBERS} more")
        body = f"**Active:** {release_line(active)}\n" + ("\n".join(lines) or "_no members yet_")
        if status.blockers:
            body += "\n\n**Next:** " + " ".join(status.blockers)
    embed = discord.Embed(title=TITLE, description=clip(body, 4000))
    done = [r for r in recent if r.state in (ReleaseState.SHIPPED, ReleaseState.ABANDONED)]
    if done:
        embed.add_field(
            name="Latest releases",
            value=clip("\n".join(map(release_line, done)), 1024),
            inline=False,
        )
    return embed
