"""Not a benchmark: a Discord message (content, embeds, an attached image) as a page that
looks like Discord's dark theme, for the pictures in ``docs/``.

Only the markdown Conductor writes is rendered: ``**bold**``, ``*italic*``/``_italic_``,
```` `code` ````, ``> quote`` lines, ``[text](url)`` links, ``<t:…:f|R|d>`` timestamps (as a
reader in UTC on the given ``now`` sees them) and the ``\\`` escapes of
``discord.utils.escape_markdown``. Everything else is escaped as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

_TOKEN = re.compile(
    r"(?P<escape>\\[\\*_`~|>#\-\[\]()])"
    r"|`(?P<code>[^`]+)`"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|\*(?P<star>[^*\s][^*]*?)\*"
    r"|(?<![\w\\])_(?P<under>[^_\s][^_]*?)_(?!\w)"
    r"|\[(?P<label>[^\]]+)\]\((?P<url>https?://[^)\s]+)\)"
    r"|<t:(?P<ts>-?\d+)(?::(?P<style>[tTdDfFR]))?>"
)


def _relative(at: datetime, now: datetime) -> str:
    seconds = (now - at).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if ahead else f"{text} ago"
    return "just now"


def _timestamp(value: int, style: str | None, now: datetime) -> str:
    at = datetime.fromtimestamp(value, UTC)
    if style == "R":
        text = _relative(at, now)
    elif style in {"d", "D"}:
        text = at.strftime("%d %B %Y")
    elif style in {"t", "T"}:
        text = at.strftime("%H:%M")
    else:
        text = at.strftime("%d %B %Y %H:%M")
    return f'<span class="ts">{html.escape(text)}</span>'


def inline(text: str, now: datetime) -> str:
    """One line of Discord markdown as HTML."""
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(html.escape(text[pos : match.start()]))
        pos = match.end()
        kind = match.lastgroup
        if match["escape"]:
            out.append(html.escape(match["escape"][1:]))
        elif match["code"] is not None:
            out.append(f"<code>{html.escape(match['code'])}</code>")
        elif match["bold"] is not None:
            out.append(f"<strong>{inline(match['bold'], now)}</strong>")
        elif match["star"] is not None or match["under"] is not None:
            out.append(f"<em>{inline(match['star'] or match['under'], now)}</em>")
        elif match["label"] is not None:
            out.append(f'<a href="{html.escape(match["url"])}">{inline(match["label"], now)}</a>')
        elif match["ts"] is not None:
            out.append(_timestamp(int(match["ts"]), match["style"], now))
        else:  # pragma: no cover - every group is handled above
            raise AssertionError(kind)
    out.append(html.escape(text[pos:]))
    return "".join(out)


def block(text: str, now: datetime) -> str:
    """Several lines: ``> `` lines become a quote bar, the rest keep their breaks."""
    parts = []
    for line in text.split("\n"):
        if line.startswith("> "):
            parts.append(f'<div class="quote">{inline(line[2:], now)}</div>')
        else:
            parts.append(f"<div>{inline(line, now) or '&nbsp;'}</div>")
    return "".join(parts)


def _embed(embed: Mapping[str, Any], now: datetime) -> str:
    colour = f"#{embed.get('color', 0x4F545C):06x}"
    inner = []
    if embed.get("title"):
        inner.append(f'<div class="title">{inline(embed["title"], now)}</div>')
    if embed.get("description"):
        inner.append(f'<div class="description">{block(embed["description"], now)}</div>')
    fields = []
    for field in embed.get("fields", []):
        cls = "field inline" if field.get("inline") else "field"
        fields.append(
            f'<div class="{cls}"><div class="name">{inline(field["name"], now)}</div>'
            f'<div class="value">{block(field["value"], now)}</div></div>'
        )
    if fields:
        inner.append(f'<div class="fields">{"".join(fields)}</div>')
    if embed.get("image"):
        inner.append(f'<img class="image" src="{html.escape(embed["image"]["url"])}" alt="">')
    if embed.get("footer"):
        inner.append(f'<div class="footer">{html.escape(embed["footer"]["text"])}</div>')
    return f'<div class="embed" style="border-left-color:{colour}">{"".join(inner)}</div>'


STYLE = """
body { margin: 0; background: #313338; color: #dbdee1;
  font: 15px/1.375 "Noto Sans", "DejaVu Sans", sans-serif; }
.message { display: flex; gap: 14px; padding: 18px 20px 22px; max-width: 720px; }
.avatar { width: 40px; height: 40px; border-radius: 50%; background: #5865f2; color: #fff;
  display: flex; align-items: center; justify-content: center; font-weight: 700; flex: none; }
.head { margin-bottom: 2px; }
.author { color: #f2f3f5; font-weight: 600; }
.tag { background: #5865f2; color: #fff; font-size: 10px; font-weight: 600; border-radius: 3px;
  padding: 1px 4px; margin-left: 4px; vertical-align: 2px; }
.when { color: #949ba4; font-size: 12px; margin-left: 6px; }
.ephemeral { color: #949ba4; font-size: 12px; margin-top: 6px; }
.embed { background: #2b2d31; border-left: 4px solid; border-radius: 4px; padding: 10px 16px
  14px 12px; margin-top: 4px; max-width: 640px; }
.title { color: #f2f3f5; font-weight: 600; margin: 4px 0 6px; }
.description, .value { font-size: 14px; }
.fields { display: flex; flex-wrap: wrap; gap: 8px 16px; margin-top: 8px; }
.field { flex: 1 1 100%; } .field.inline { flex: 1 1 30%; }
.name { color: #f2f3f5; font-weight: 600; font-size: 14px; margin-bottom: 2px; }
.footer { color: #b5bac1; font-size: 12px; margin-top: 8px; }
.image { display: block; max-width: 600px; margin-top: 12px; border-radius: 4px; }
code { background: #1e1f22; border-radius: 3px; padding: 0 3px; font-size: 85%;
  font-family: "DejaVu Sans Mono", monospace; }
.ts { background: #3f4147; border-radius: 3px; padding: 0 2px; }
.quote { border-left: 4px solid #4e5058; padding-left: 10px; }
a { color: #00a8fc; text-decoration: none; }
"""


def message_page(
    *,
    author: str,
    content: str = "",
    embeds: Sequence[Mapping[str, Any]] | None = None,
    image: str | None = None,
    now: datetime,
    ephemeral: bool = False,
) -> str:
    """A whole page: one bot message (content, embeds, an attached image's URL)."""
    body = []
    if content:
        body.append(f'<div class="content">{block(content, now)}</div>')
    body.extend(_embed(embed, now) for embed in embeds or [])
    if image:
        body.append(f'<img class="image" src="{html.escape(image)}" alt="">')
    if ephemeral:
        body.append('<div class="ephemeral">👁 Only you can see this</div>')
    when = now.strftime("Today at %H:%M")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<style>{STYLE}</style></head><body><div class='message'>"
        f"<div class='avatar'>{html.escape(author[:1].upper())}</div><div>"
        f"<div class='head'><span class='author'>{html.escape(author)}</span>"
        f"<span class='tag'>APP</span><span class='when'>{when}</span></div>"
        f"{''.join(body)}</div></div></body></html>"
    )
