"""Where discord.py talks to: Discord itself, or (``CONDUCTOR_DISCORD_API_URL``) a stand-in on
this machine, for the end-to-end tests in ``e2e/``.

discord.py 2.7.1 keeps its REST base in ``discord.http.Route.BASE`` (interaction responses and
followups go through the same ``Route`` in ``discord.webhook.async_``) and opens its first
gateway connection at ``DiscordWebSocket.DEFAULT_GATEWAY`` (a plain ``Client`` never asks
``GET /gateway/bot``; only ``AutoShardedClient`` does); a RESUME goes to READY's
``resume_gateway_url``, which the stand-in also points at itself. Only a loopback host is
accepted: the token goes wherever this points.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: the REST version Conductor speaks (discord.py's default)
API_VERSION = 10
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this
    machine: ``localhost``, 127.0.0.0/8 or ::1."""
    name = host.strip().removeprefix("[").removesuffix("]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_api_url(value: str) -> str:
    """``value`` as a base URL (``http://127.0.0.1:PORT``, no path), or ``ValueError`` saying
    why not: another scheme, a path, or a host that is not this machine (127.0.0.0/8, ::1,
    localhost)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"needs an http:// or https:// URL, got {parts.scheme or 'no'} scheme")
    host = parts.hostname or ""
    if not is_loopback_host(host):
        raise ValueError(
            f"must point at this machine (127.0.0.0/8, ::1 or localhost), not {host or 'no host'}"
            ": the bot's token is sent there"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("takes the stand-in's base URL alone (scheme, host, port), no path")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"has a bad port: {error}") from None
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def point_discord_at(base_url: str) -> None:
    """Send discord.py's REST calls, interaction callbacks, followups and gateway to the
    stand-in at ``base_url`` (checked again here: loopback only). Process-wide: call it once,
    before the bot starts."""
    import discord.gateway  # noqa: PLC0415 - the launcher has loaded discord.py already
    import discord.http  # noqa: PLC0415
    import yarl  # noqa: PLC0415

    base = loopback_api_url(base_url)
    discord.http.Route.BASE = f"{base}/api/v{API_VERSION}"
    ws = "wss" if base.startswith("https:") else "ws"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"{ws}{base[base.index(':') :]}/")
    log.warning("CONDUCTOR_DISCORD_API_URL: talking to %s, not to Discord", base)
