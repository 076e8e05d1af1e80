"""The deployments board."""

from bot.client import ConductorBot
from cogs.board._cog import BoardCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(BoardCog(bot))
