"""``CONDUCTOR_DISCORD_API_URL``: a stand-in Discord on this machine, and nowhere else."""

from __future__ import annotations

import discord.gateway
import discord.http
import discord.webhook.async_
import pytest

from bot.endpoint import loopback_api_url, point_discord_at


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("http://127.0.0.1:8123/", "http://127.0.0.1:8123"),
        ("http://127.9.8.7:1", "http://127.9.8.7:1"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("https://LOCALHOST", "https://localhost"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_a_loopback_url_is_taken_as_the_base(given: str, base: str) -> None:
    assert loopback_api_url(given) == base


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("https://discord.com", "must point at this machine"),
        ("http://10.0.0.5:8080", "must point at this machine"),
        ("http://128.0.0.1:8080", "must point at this machine"),
        ("http://localhost.example.com:8080", "must point at this machine"),
        ("http://[::2]:8080", "must point at this machine"),
        ("http://0.0.0.0:8080", "must point at this machine"),
        ("ws://127.0.0.1:8080", "needs an http:// or https:// URL"),
        ("127.0.0.1:8080", "needs an http:// or https:// URL"),
        ("http://127.0.0.1:8080/api/v10", "no path"),
        ("http://127.0.0.1:99999", "bad port"),
    ],
)
def test_anything_else_is_refused_saying_why(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        loopback_api_url(given)


def test_rest_webhooks_and_the_gateway_go_to_the_stand_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )
    point_discord_at("http://127.0.0.1:8123")
    route = discord.http.Route("GET", "/channels/{channel_id}", channel_id=42)
    assert route.url == "http://127.0.0.1:8123/api/v10/channels/42"
    # interaction callbacks and followups: the webhook adapter's routes
    webhook_route = vars(discord.webhook.async_)["Route"]
    hook = webhook_route(
        "POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=1, webhook_token="t"
    )
    assert hook.url == "http://127.0.0.1:8123/api/v10/webhooks/1/t"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:8123/"
    with pytest.raises(ValueError, match="must point at this machine"):
        point_discord_at("https://discord.com")
