"""The runs' reconcile: runs of every kind whose process died, and the notes still owed."""

from __future__ import annotations

from bot.client import ConductorBot
from cogs.runs._cog import RunsCog


async def setup(bot: ConductorBot) -> None:
    await bot.add_cog(RunsCog(bot))
