"""The board's history and release pages, read through the same :class:`BoardSource`:

    GET /deployments/history                 every release, 25 a page, newest first
                                             (``?before=<id>`` from the Older link,
                                             ``?state=shipped`` … and ``?seal=red`` … filters)
    GET /deployments/releases/{id or slug}   one release: members and their notes, every
                                             seal, every run with its steps, its links
    GET /deployments/releases/{…}/live       that page's body alone (ETag; the page polls it
                                             while a run may change it)

A cursor or a filter the page cannot read is a 400 page that says what it expected; a release
the guild does not have is a 404 page.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.app import REFRESH_MS, Board, Refused, _answer, _http
from bot.web.model import history_data, record_data
from bot.web.snapshot import Encoded, etag
from conductor.errors import NotFound
from conductor.releases.record import history_page, release_record
from conductor.states import ReleaseState, SealStatus

#: the digits a release id may have in a cursor (ids are database integers)
CURSOR_DIGITS = 18
#: how a filter's value is shown back in a refusal, at most
SHOWN = 40
STATE_WORDS = tuple(s.value for s in ReleaseState)
SEAL_WORDS = tuple(s.value for s in SealStatus)


def _cursor(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > CURSOR_DIGITS or int(raw) < 1:
        raise Refused(
            400,
            f"before: expected the release id an Older link carries (a positive number, "
            f"e.g. ?before=120); {raw[:SHOWN]!r} is not one. Start again from the newest: "
            "/deployments/history.",
        )
    return int(raw)


def _filter(request: web.Request, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen: list[str] = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            word = part.strip().lower().replace(" ", "_")
            if not word:
                continue
            if word not in allowed:
                raise Refused(
                    400,
                    f"{name}: expected one of {', '.join(allowed)}; "
                    f"{part.strip()[:SHOWN]!r} is not one.",
                )
            if word not in chosen:
                chosen.append(word)
    return tuple(chosen)


class Pages:
    """The history and release routes, over the board's guild choice and templates."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def _html(self, template: str, status: int = 200, **values: Any) -> web.Response:
        html = self.board.env.get_template(template).render(**values)
        return web.Response(
            text=html,
            status=status,
            content_type="text/html",
            headers={"Cache-Control": "no-cache"},
        )

    def _refused(self, status: int, text: str) -> web.Response:
        return self._html("error.html", status, message=text)

    async def history(self, request: web.Request) -> web.Response:
        try:
            guild, _ = await self.board.guild(request)
            before = _cursor(request.query.get("before", ""))
            states = _filter(request, "state", STATE_WORDS)
            seals = _filter(request, "seal", SEAL_WORDS)
        except Refused as refused:
            return self._refused(refused.status, refused.text)
        page = await history_page(
            self.board.source.database,
            guild.id,
            before=before,
            states=tuple(ReleaseState(s) for s in states),
            seals=tuple(SealStatus(s) for s in seals),
        )
        data = history_data(page, guild, before=before, states=states, seals=seals)
        return self._html(
            "history.html", history=data, all_states=STATE_WORDS, all_seals=SEAL_WORDS
        )

    async def _record(self, request: web.Request) -> dict[str, Any]:
        guild, _ = await self.board.guild(request)
        try:
            record = await release_record(
                self.board.source.database, guild.id, request.match_info["key"]
            )
        except NotFound as missing:
            raise Refused(404, str(missing).replace("`", "")) from None
        return record_data(record, guild, commit_url=self.board.source.commit_url)

    async def release(self, request: web.Request) -> web.Response:
        try:
            data = await self._record(request)
        except Refused as refused:
            return self._refused(refused.status, refused.text)
        body = self.board.env.get_template("release_body.html").render(page=data)
        slug = data["release"]["slug"]
        return self._html(
            "release.html",
            page=data,
            body=body,
            etag=etag(body.encode()),
            source=f"/deployments/releases/{slug}/live?guild={data['guild']['id']}",
            every=REFRESH_MS,
        )

    async def release_live(self, request: web.Request) -> web.Response:
        try:
            data = await self._record(request)
        except Refused as refused:
            raise _http(refused) from None
        body = self.board.env.get_template("release_body.html").render(page=data).encode()
        return _answer(request, Encoded.of(body), "text/html")


def add_pages(app: web.Application, board: Board) -> None:
    """The history and release routes on ``app``."""
    pages = Pages(board)
    app.router.add_get("/deployments/history", pages.history)
    app.router.add_get("/deployments/releases/{key}", pages.release)
    app.router.add_get("/deployments/releases/{key}/live", pages.release_live)
