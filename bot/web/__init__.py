"""The read-only ``/deployments`` web board the bot serves: the routes (``app``), the data
they show (``model``, from the same domain query as the pinned board), the server in the
bot's process (``server``), its ``templates/`` and ``static/`` files. No discord here: the
bot hands in what only it knows (the gateway, the guilds' names)."""

from bot.web.app import BoardSource, build_app
from bot.web.server import BoardServer

__all__ = ["BoardServer", "BoardSource", "build_app"]
