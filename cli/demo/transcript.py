"""What each channel of the demo shows, printed as it happens: every message, edit, reaction
and thread in the guild, one readable block per event, mentions and timestamps shown by name.

Fed by simcord's backend subscribers (``env.backend.subscribers``), which simcord 3.2.1
(pinned) keeps as plain callables: every gateway event, edits included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

log = logging.getLogger(__name__)
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")
_TIMESTAMP = re.compile(r"<t:(-?\d+)(?::([tTdDfFR]))?>")
#: discord.MessageFlags.loading: a deferred interaction's "is thinking…" placeholder
_LOADING = 1 << 7
#: message types: a thread was created / a message was pinned
_THREAD_CREATED, _PINS_ADD = 18, 6

_STYLES = {
    "channel": "bold cyan",
    "conductor": "bold magenta",
    "agent": "bold yellow",
    "human": "bold green",
    "command": "bold",
    "narration": "italic",
    "dim": "dim",
}


class Transcript:
    """Prints every message, edit, reaction and thread in the guild, one readable block per
    event: ``#channel  author: text``, mentions shown as ``@name``, timestamps as UTC times,
    an edit as the lines that changed, the board's embed as text."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.users: dict[int, tuple[str, str]] = {}  # id -> (name, style)
        self.roles: dict[int, str] = {}
        self.channels: dict[int, str] = {}
        #: the lines last shown for each message (edits print what changed)
        self.shown: dict[int, list[str]] = {}
        #: each message's author and first line, to say what a reaction is on
        self.messages: dict[int, str] = {}
        #: reactions by one user on one message, printed as one line: (user, message, emoji)
        self.reacting: tuple[int, int, list[str], int] | None = None

    # -- names -------------------------------------------------------------------------------

    def user(self, user_id: int, name: str, kind: str = "human") -> None:
        self.users[user_id] = (name, kind)

    def channel(self, channel_id: int, name: str) -> None:
        self.channels[channel_id] = name

    def role(self, role_id: int, name: str) -> None:
        self.roles[role_id] = name

    def channel_label(self, channel_id: int) -> str:
        return self.channels.get(channel_id, f"#{channel_id}")

    def render(self, text: str) -> str:
        """Mentions as ``@name`` / ``@Role`` / ``#channel``, timestamps as UTC; the rest as is."""

        def user(match: re.Match[str]) -> str:
            known = self.users.get(int(match.group(1)))
            return f"@{known[0]}" if known else match.group(0)

        def role(match: re.Match[str]) -> str:
            known = self.roles.get(int(match.group(1)))
            return f"@{known}" if known else match.group(0)

        def channel(match: re.Match[str]) -> str:
            known = self.channels.get(int(match.group(1)))
            return known if known else match.group(0)

        def timestamp(match: re.Match[str]) -> str:
            at = datetime.fromtimestamp(int(match.group(1)), UTC)
            return at.strftime("%Y-%m-%d %H:%M UTC")

        text = _USER_MENTION.sub(user, text)
        text = _ROLE_MENTION.sub(role, text)
        text = _CHANNEL_MENTION.sub(channel, text)
        return _TIMESTAMP.sub(timestamp, text)

    # -- output ------------------------------------------------------------------------------

    def _line(self, *parts: tuple[str, str]) -> Text:
        return Text.assemble(*parts)

    def _body_style(self, line: str) -> str:
        if line.startswith(("🔴", "🚨", "⚠️", "❌")):
            return "bold red"
        if line.startswith(("🟢", "✅")):
            return "green"
        return ""

    def print(self, text: Text | Rule | str = "") -> None:
        self.flush()
        self.console.print(text)

    def block(self, header: Text, lines: list[str]) -> None:
        """``header`` then the first line on the same line, the rest indented under it."""
        first, *rest = lines or [""]
        header.append(first, style=self._body_style(first))
        self.print(header)
        for line in rest:
            self.print(Text(f"    {line}" if line else "", style=self._body_style(line)))

    def narrate(self, text: str) -> None:
        self.print(Text(f"  » {text}", style=_STYLES["narration"]))

    def section(self, title: str) -> None:
        self.print()
        self.print(Rule(Text(title, style="bold")))

    def command(self, who: str, channel_id: int, name: str, options: Mapping[str, Any]) -> None:
        shown = " ".join(f"{key}:{value}" for key, value in options.items())
        self.print(
            self._line(
                (self.channel_label(channel_id), _STYLES["channel"]),
                ("  ", ""),
                (who, _STYLES["human"]),
                (" ▸ ", ""),
                (f"/{name}" + (f" {shown}" if shown else ""), _STYLES["command"]),
            )
        )

    def ephemeral(self, who: str, channel_id: int, content: str) -> None:
        header = self._line(
            (self.channel_label(channel_id), _STYLES["channel"]),
            ("  ", ""),
            ("Conductor", _STYLES["conductor"]),
            (f" (only {who} sees this): ", _STYLES["dim"]),
        )
        self.block(header, self.render(content).splitlines())

    # -- the feed ----------------------------------------------------------------------------

    def __call__(self, event: str, payload: Mapping[str, Any]) -> None:
        try:
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
                self._message(payload, edited=event == "MESSAGE_UPDATE")
            elif event == "MESSAGE_REACTION_ADD":
                self._reaction(payload)
            elif event == "THREAD_CREATE":
                parent = self.channel_label(int(payload["parent_id"]))
                self.channel(int(payload["id"]), f"{parent} › {payload.get('name')}")
        except Exception:  # the show must not stop the bot: log and go on
            log.exception("could not print %s", event)

    def _author(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        author = payload.get("author") or {}
        user_id = int(author.get("id", 0))
        if payload.get("webhook_id"):
            return f"{author.get('username', 'webhook')} (webhook)", _STYLES["agent"]
        if user_id in self.users:
            name, kind = self.users[user_id]
            return (name, _STYLES[kind]) if kind != "agent" else (f"{name} (bot)", _STYLES[kind])
        return str(author.get("global_name") or author.get("username") or user_id), ""

    def _lines(self, payload: Mapping[str, Any]) -> list[str]:
        lines = self.render(str(payload.get("content") or "")).splitlines()
        for embed in payload.get("embeds") or []:
            if embed.get("title"):
                lines.append(f"▌ {self.render(embed['title'])}")
            lines += [
                f"▌ {line}".rstrip()
                for line in self.render(embed.get("description", "")).splitlines()
            ]
            for field in embed.get("fields") or []:
                lines.append(f"▌ {self.render(field.get('name', ''))}:")
                lines += [
                    f"▌   {line}" for line in self.render(field.get("value", "")).splitlines()
                ]
        lines += [f"📎 {file.get('filename')}" for file in payload.get("attachments") or []]
        return lines

    def _message(self, payload: Mapping[str, Any], *, edited: bool) -> None:
        message_id = int(payload["id"])
        channel_id = int(payload["channel_id"])
        name, style = self._author(payload)
        first = next(iter(self._lines(payload)), "")
        self.messages[message_id] = f"{name}: {first}" if first else f"{name}'s message"
        if int(payload.get("flags") or 0) & _LOADING:
            self.shown[message_id] = []
            return  # "Conductor is thinking…": shown once it says something
        header = self._line((self.channel_label(channel_id), _STYLES["channel"]), ("  ", ""))
        kind = int(payload.get("type") or 0)
        if kind == _THREAD_CREATED:
            header.append(f"🧵 {name} started a thread: ", _STYLES["dim"])
            self.block(header, [str(payload.get("content") or "")])
            return
        if kind == _PINS_ADD:
            header.append(f"📌 {name} pinned a message", _STYLES["dim"])
            self.print(header)
            return
        lines = self._lines(payload)
        before = self.shown.get(message_id)
        self.shown[message_id] = lines
        header.append(name, style)
        if payload.get("interaction_metadata"):
            who = (payload["interaction_metadata"].get("user") or {}).get("username", "")
            header.append(f" ↪ {who}" if who else " ↪", _STYLES["dim"])
        if payload.get("message_reference") and not payload.get("interaction_metadata"):
            header.append(" (reply)", _STYLES["dim"])
        if lines == before:
            return  # re-sent unchanged
        if not edited or not before or payload.get("embeds"):
            # a new message, the first words of a deferred answer, or the board (its embed is
            # short and reads best whole)
            header.append(" ✎ edited: " if edited and before else ": ", _STYLES["dim"])
            self.block(header, lines)
            return
        changed = [line for line in lines if line not in before]
        header.append(" ✎ edited: ", _STYLES["dim"])
        if lines and lines[0] not in changed:
            # the first line says which message this is
            header.append(f"{lines[0]} … ", _STYLES["dim"])
        self.block(header, changed or ["(lines removed)"])

    def _reaction(self, payload: Mapping[str, Any]) -> None:
        user_id, message_id = int(payload["user_id"]), int(payload["message_id"])
        emoji = str((payload.get("emoji") or {}).get("name", "?"))
        pending = self.reacting
        if pending is not None and pending[:2] == (user_id, message_id):
            pending[2].append(emoji)
            return
        self.flush()
        self.reacting = (user_id, message_id, [emoji], int(payload["channel_id"]))

    def flush(self) -> None:
        """Print the reactions held back (one line for one user's reactions on one message)."""
        if self.reacting is None:
            return
        user_id, message_id, emoji, channel_id = self.reacting
        self.reacting = None
        name, kind = self.users.get(user_id, (str(user_id), "human"))
        target = self.messages.get(message_id, "a message")
        if len(target) > 60:
            target = target[:59] + "…"
        self.console.print(
            self._line(
                (self.channel_label(channel_id), _STYLES["channel"]),
                ("  ", ""),
                (name, _STYLES[kind]),
                (f" reacted {' '.join(emoji)}", ""),
                (f" on “{target}”", _STYLES["dim"]),
            )
        )
