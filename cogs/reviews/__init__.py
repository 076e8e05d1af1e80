"""Reviews: ✅ and ❌ on review requests."""

from bot.client import ConductorBot
from cogs.reviews._cog import ReviewsCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(ReviewsCog(bot))
