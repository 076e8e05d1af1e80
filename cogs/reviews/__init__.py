"""Reviews: ✅ and ❌ on review requests, and the replies to them (the tasks' conversation)."""

from bot.client import ConductorBot
from cogs.reviews._cog import ReviewsCog
from cogs.reviews._conversation import ConversationCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(ReviewsCog(bot))
    await bot.add_cog(ConversationCog(bot))
