"""``/seal``: re-run the production smoke seal."""

from bot.client import ConductorBot
from cogs.seal._cog import SealCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(SealCog(bot))
