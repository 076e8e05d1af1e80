"""``conductor run``: start the bot with the token from the environment (the launcher: it knows
the bot; the bot knows nothing of the CLI)."""

from __future__ import annotations

import asyncio
import logging
import sys

import aiohttp
import discord

from bot.client import create_bot
from bot.endpoint import point_discord_at
from bot.settings import Settings
from store.db import SchemaNotAtHead
from store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: exit statuses: a setting is wrong (2), Discord could not be reached (1)
EXIT_CONFIG, EXIT_UNREACHABLE = 2, 1


def without_voice_warnings() -> None:
    """Conductor never joins a voice channel: discord.py's warnings that PyNaCl and davey are
    missing ("voice will NOT be supported") are noise at every start. Its own switches turn
    those two off; every other warning of discord.py's still shows."""
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False


async def _main(settings: Settings) -> None:
    if settings.discord_token is None:
        raise RuntimeError("CONDUCTOR_DISCORD_TOKEN is not set")
    if settings.discord_api_url is not None:
        point_discord_at(settings.discord_api_url)
    bot = create_bot(settings)
    async with bot:
        # The secret leaves the SecretStr only here, straight into discord.py.
        await bot.start(settings.discord_token.get_secret_value())


def run_bot(settings: Settings) -> None:
    """Run until stopped. A refused token or an unreachable Discord ends with one line on
    stderr and a non-zero status, not a traceback."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # transitions says "Exited state …" and "Entered state …" at INFO for every move: two
    # lines of the library's internals per handoff (each move is logged once, by the
    # domain, and recorded as a stage event).
    logging.getLogger("transitions").setLevel(logging.WARNING)
    without_voice_warnings()
    try:
        asyncio.run(_main(settings))
    except SchemaNotAtHead as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(EXIT_CONFIG) from None
    except DatabaseUnavailable as error:  # before OSError: it is not Discord that failed
        sys.stderr.write(f"error: {error.problem}: {error.detail}\n")
        raise SystemExit(EXIT_UNREACHABLE) from None
    except discord.LoginFailure:
        sys.stderr.write("error: Discord refused CONDUCTOR_DISCORD_TOKEN; check the bot token\n")
        raise SystemExit(EXIT_CONFIG) from None
    except (aiohttp.ClientConnectionError, OSError) as error:
        sys.stderr.write(f"error: cannot reach Discord: {error}\n")
        raise SystemExit(EXIT_UNREACHABLE) from None
    except KeyboardInterrupt:
        log.info("stopped")
