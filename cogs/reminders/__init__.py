"""Reminders: a release left open, a red seal nobody acted on, a lock held too long."""

from bot.client import ConductorBot
from cogs.reminders._cog import RemindersCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(RemindersCog(bot))
