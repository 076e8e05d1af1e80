"""``/conductor``: bind this guild's channels and roles, and show what is in force."""

from bot.client import ConductorBot
from cogs.setup._cog import SetupCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(SetupCog(bot))
