"""``/release status`` as an embed."""

from __future__ import annotations

import discord

from bot.render import member_line, release_line
from conductor.views import StatusView


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
