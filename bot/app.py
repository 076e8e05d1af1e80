"""``conductor run``: start the bot with the token from the environment."""

from __future__ import annotations

import asyncio
import logging

from bot.client import create_bot
from bot.settings import Settings

log = logging.getLogger(__name__)


async def _main(settings: Settings) -> None:
    if settings.discord_token is None:
        raise RuntimeError("CONDUCTOR_DISCORD_TOKEN is not set")
    bot = create_bot(settings)
    async with bot:
        # The secret leaves the SecretStr only here, straight into discord.py.
        await bot.start(settings.discord_token.get_secret_value())


def run_bot(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_main(settings))
