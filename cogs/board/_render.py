"""The deployments board: the lock, the active release, what production runs, and the latest
releases with their seal badges."""

from __future__ import annotations

import discord

from conductor.states import ReleaseState
from conductor.text import (
    clip,
    half_rollback_text,
    lock_line,
    member_line,
    production_line,
    release_line,
)
from conductor.views import ReleaseView, StatusView

TITLE = "🚂 Deployments"
#: the releases the "Latest releases" field lists
FINISHED = (ReleaseState.SHIPPED, ReleaseState.ROLLED_BACK, ReleaseState.ABANDONED)
MAX_MEMBERS = 20
#: the description's share of the embed (Discord takes 4,096; the fields need room too)
DESCRIPTION_LIMIT = 4000


def board_embed(status: StatusView, recent: tuple[ReleaseView, ...]) -> discord.Embed:
    """The pinned board. Deterministic for the same data (no clock in it), so an unchanged
    board renders identically and is not edited."""
    active = status.active
    if active is None and status.lock is not None:
        body = "No active release. An operator opens one once the train is unlocked."
    elif active is None:
        body = "No active release. An operator opens one with `/release open`."
    else:
        lines = [member_line(m) for m in active.members[:MAX_MEMBERS]]
        if len(active.members) > MAX_MEMBERS:
            lines.append(f"… and {len(active.members) - MAX_MEMBERS} more")
        body = f"**Active:** {release_line(active)}\n" + ("\n".join(lines) or "_no members yet_")
        if status.blockers:
            body += "\n\n**Next:** " + " ".join(status.blockers)
    # The stop sign first, what production runs last; the active release gives way to both.
    head = f"{lock_line(status.lock)}\n\n" if status.lock is not None else ""
    tail = ""
    if status.last_shipped is not None:
        tail = f"\n\n**Production:** {production_line(status.last_shipped)}"
        if status.held:
            tail += "\n⚠️ Held: neither re-sealed green nor rolled back."
        if status.half is not None:
            tail += f"\n⚠️ Held: {half_rollback_text(status.half)}"
    body = head + clip(body, DESCRIPTION_LIMIT - len(head) - len(tail)) + tail
    embed = discord.Embed(title=TITLE, description=body)
    done = [r for r in recent if r.state in FINISHED]
    if done:
        embed.add_field(
            name="Latest releases",
            value=clip("\n".join(map(release_line, done)), 1024),
            inline=False,
        )
    return embed
