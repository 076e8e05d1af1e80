"""Handoffs posted by agents in the handoff channels."""

from bot.client import ConductorBot
from cogs.handoffs._cog import HandoffsCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(HandoffsCog(bot))
