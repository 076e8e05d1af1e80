"""``/task``: show a task's card, list tasks, bid on a task's size."""

from bot.client import ConductorBot
from cogs.task._cog import TaskCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(TaskCog(bot))
