"""``/release``: open, add, remove, status, assemble, ship, abandon."""

from bot.client import ConductorBot
from cogs.release._cog import ReleaseCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(ReleaseCog(bot))
