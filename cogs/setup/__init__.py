"""Placeholder until the cog is written (work in progress, not committed)."""

from discord.ext import commands


async def setup(bot: commands.Bot) -> None:
    return None
