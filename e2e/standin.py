"""A stand-in Discord on 127.0.0.1: REST v10 and the gateway, as much of them as Conductor uses,
for the real bot in a process of its own (``CONDUCTOR_DISCORD_API_URL``).

It keeps one guild in memory (channels, threads, roles, members, messages, reactions,
attachments, the commands the bot synced, interactions) and enforces what Discord enforces
where it matters: every REST body checked against Discord's OpenAPI description
(:mod:`e2e.spec`), 2,000-character messages, 6,000-character embeds, 25 MB attachments, one
initial response per interaction within 3 s, rate-limit headers and, deterministically, a 429
on every :data:`RATE_LIMIT_EVERY`-th request of a route. Whatever goes wrong is recorded in
:attr:`StandIn.failures` (a body the spec refuses, a route it does not know, a limit broken);
the tests fail on any.

OAuth2 for the board's Login with Discord: ``GET /oauth2/authorize`` (straight back with a
code and the state for :attr:`StandIn.oauth_user`), ``POST /api/v10/oauth2/token`` (the
client secret, the code once, the redirect URI and PKCE's verifier checked), ``GET
/api/v10/users/@me`` and ``/users/@me/guilds/{guild_id}/member`` with the Bearer token
(10004 Unknown Guild for a non-member, as Discord answers).

Several processes of the bot on one shard (:attr:`StandIn.twin_sessions`, a test's opt-in):
each live session gets every dispatch of the guild, as Discord sends them to every session of
a bot on the shard, and the second initial response to an interaction (40060, the race one
process lost) is kept apart, in :attr:`StandIn.raced`. A test can hold READY until all its
processes identified (:meth:`StandIn.release_ready`), and hold requests on a path at a gate
(:meth:`StandIn.hold`), to make processes meet where they race.

The server runs on a loop in a thread of its own; the test drives it from its own thread
through :class:`e2e.driver.Driver`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import mimetypes
import re
import secrets
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import BodyPartReader, WSMsgType, web

from e2e.spec import ApiSpec, load_spec

log = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
#: every Nth request on one route bucket is answered 429 (then retried by discord.py)
RATE_LIMIT_EVERY = 7
RETRY_AFTER_S = 0.05
#: the bucket's advertised size and window
BUCKET_LIMIT, BUCKET_WINDOW_S = 10, 1.0
MESSAGE_LIMIT = 2000
EMBED_TOTAL_LIMIT = 6000
ATTACHMENT_LIMIT = 25 * 1024 * 1024
INTERACTION_DEADLINE_S = 3.0
#: Discord's identify window: ``max_concurrency`` IDENTIFYs per this many seconds, one a bucket
IDENTIFY_WINDOW_S = 5.0
EPHEMERAL, LOADING = 1 << 6, 1 << 7
#: a multipart body's file part, ``files[n]``
_FILE_PART = re.compile(r"^files\[(\d+)\]$")
#: how long a request waited at a test's gate (:meth:`StandIn.hold`)
HELD_S = web.RequestKey("held_s", float)
HEARTBEAT_MS = 41_250
ALL_BUT_ADMIN = str((1 << 51) - 1 & ~(1 << 3))
#: the OAuth2 scopes the stand-in grants (the board's login asks for exactly these)
OAUTH_SCOPES = frozenset({"identify", "guilds.members.read"})
#: an authorization code's life (Discord's are short-lived)
OAUTH_CODE_TTL_S = 600.0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # exactly application/json: aiohttp's json_response adds a charset, which discord.py reads
    # as text
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(status: int, code: int, message: str, errors: Json | None = None) -> web.Response:
    body: Json = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return _json(body, status)


@dataclass
class Failure:
    """Something the bot did that Discord would not take (or the stand-in does not know)."""

    #: "spec", "unknown-route", "limit", "interaction", "gateway"; "raced": a process lost the
    #: race to answer an interaction (``twin_sessions``: kept in ``raced``, not a failure)
    kind: str
    method: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.method} {self.path}: {self.detail}"


@dataclass
class Call:
    """One REST request the stand-in answered (429s included)."""

    method: str
    template: str
    path: str
    status: int
    body: Any


@dataclass
class Interaction:
    id: int
    token: str
    type: int
    user_id: int
    channel_id: int
    created: float
    data: Json
    responded: bool = False
    response_type: int | None = None
    #: the original response's message id (after a type 4 or a deferral)
    original: int | None = None
    #: the message a component sat on
    message_id: int | None = None
    modal: Json | None = None


@dataclass
class Session:
    id: str
    seq: int = 0
    #: every dispatch of the session, for a RESUME's replay
    sent: list[Json] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    shard: int = 0
    #: its READY went out (a held one has not): it gets the guild's dispatches from then on
    ready: bool = False


class StandIn:
    """The stand-in Discord. All state lives on the server's loop; the driver calls into it."""

    def __init__(self, token: str, spec: ApiSpec | None = None) -> None:
        self.token = token
        self.spec = spec or load_spec()
        self.failures: list[Failure] = []
        self.calls: list[Call] = []
        self.rate_limited = 0
        #: Discord's pacing: rate-limit buckets in the headers and a 429 now and then. Off
        #: only for ``bench.bench_wire``, which measures what the bot can do, not the limits
        self.limits = True
        self._ids = itertools.count(1)
        self._buckets: dict[str, list[float]] = {}
        self._route_counts: dict[str, int] = {}
        self.users: dict[int, Json] = {}
        self.guild: Json = {}
        self.channels: dict[int, Json] = {}
        self.roles: dict[int, Json] = {}
        self.members: dict[int, Json] = {}
        #: channel id -> messages, oldest first (ephemeral ones included, flagged)
        self.messages: dict[int, list[Json]] = {}
        #: message id -> message, every message in ``messages`` (Discord finds one by id)
        self._by_id: dict[int, Json] = {}
        #: message id -> emoji -> user ids, in order
        self.reactions: dict[int, dict[str, list[int]]] = {}
        self.attachments: dict[int, tuple[str, bytes, str]] = {}
        self.commands: list[Json] = []
        self.interactions: dict[int, Interaction] = {}
        self.webhooks: dict[int, Json] = {}
        #: the session of the guild's shard (the one that gets its events)
        self.session: Session | None = None
        #: the test's opt-in to several processes on the guild's shard: a second live session
        #: there is no failure, and each session whose READY went out gets the guild's events
        self.twin_sessions = False
        #: the sessions of the guild's shard, oldest first (while ``twin_sessions``)
        self.twins: list[Session] = []
        #: the second initial responses to interactions while ``twin_sessions``: the process
        #: that lost the race to answer (answered 40060, as Discord does), not a failure
        self.raced: list[Failure] = []
        #: while set, READY waits for :meth:`release_ready` (the sessions identified meanwhile)
        self.hold_ready = False
        self._held_ready: list[Callable[[], None]] = []
        #: (method, path prefix) -> the requests waiting at its gate (:meth:`hold`): each one's
        #: body and what lets it through
        self._gates: dict[tuple[str, str], list[tuple[Any, asyncio.Event]]] = {}
        #: the bot's shards (``GET /gateway/bot``): a guild's events go to the session of
        #: shard ``(guild_id >> 22) % shard_count``; IDENTIFYs spaced per bucket
        #: (``shard % max_concurrency``) by :data:`IDENTIFY_WINDOW_S`
        self.shard_count = 1
        self.max_concurrency = 1
        #: the last session of each shard
        self.shard_sessions: dict[int, Session] = {}
        #: every IDENTIFY: (monotonic time, shard)
        self.identifies: list[tuple[float, int]] = []
        self.identified = 0
        self.resumed = 0
        #: the dispatches each RESUME replayed, by event name
        self.replayed: list[str] = []
        #: while set, a new gateway connection waits before its HELLO (a disconnect's window)
        self.gateway_gate = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.app_id = 0
        self.bot_id = 0
        self.guild_id = 0
        #: OAuth2 (Login with Discord, the board's): the application's client secret, its
        #: registered redirect URIs, the user logged in at Discord (None: the authorize page
        #: waits for a login that never comes), whether they press Cancel; the codes and
        #: tokens handed out (code -> grant, token -> grant)
        self.client_secret = secrets.token_urlsafe(24)
        self.oauth_redirects: set[str] = set()
        self.oauth_user: int | None = None
        self.oauth_denies = False
        self.oauth_codes: dict[str, Json] = {}
        self.oauth_tokens: dict[str, Json] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as error:  # the caller re-raises it
                errors.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="discord-stand-in", daemon=True)
        self._thread.start()
        ready.wait(120)  # an outer bound: it is up in well under a second
        if errors:
            raise errors[0]

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop and return what it returns."""
        return self.run(self._sync(fn))

    @staticmethod
    async def _sync(fn: Callable[[], T]) -> T:
        return fn()

    def run(self, coro: Awaitable[T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop).result(120)

    async def _start(self) -> None:
        self.gateway_gate = asyncio.Event()
        self.gateway_gate.set()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        # OAuth2 before the REST catch-all: the token endpoint takes a form, not JSON, and
        # the authorize page is Discord's web app, not its API
        app.router.add_get("/oauth2/authorize", self._oauth_authorize)
        app.router.add_post("/api/v10/oauth2/token", self._oauth_token)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{id}/{name}", self._attachment)
        app.router.add_get("/", self._gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._seed()

    async def _stop(self) -> None:
        for session in [*self.shard_sessions.values(), *self.twins]:
            if session.ws is not None:
                with contextlib.suppress(Exception):
                    await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ the world

    def snowflake(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._ids) & 0x3FFFFF)

    def _seed(self) -> None:
        self.bot_id = self.app_id = self.add_user("Conductor", bot=True)

    def add_user(self, name: str, *, bot: bool = False) -> int:
        uid = self.snowflake()
        user = {
            "id": str(uid),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }
        self.users[uid] = user
        return uid

    def create_guild(self, guild_id: int, name: str) -> None:
        self.guild_id = guild_id
        everyone = {
            "id": str(guild_id),
            "name": "@everyone",
            "permissions": str(0x6_3584_C0E41),  # Discord's default @everyone set
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        self.roles = {guild_id: everyone}
        self.guild = {"id": str(guild_id), "name": name, "owner_id": str(self.bot_id)}
        bot_role = self.add_role("Conductor", permissions=ALL_BUT_ADMIN, managed=True)
        self.add_member(self.bot_id, roles=[bot_role])

    def add_role(
        self, name: str, *, permissions: str = "0", mentionable: bool = False, managed: bool = False
    ) -> int:
        rid = self.snowflake()
        self.roles[rid] = {
            "id": str(rid),
            "name": name,
            "permissions": permissions,
            "position": len(self.roles),
            "color": 0,
            "hoist": False,
            "managed": managed,
            "mentionable": mentionable,
            "flags": 0,
        }
        return rid

    def add_member(self, user_id: int, *, roles: list[int] | None = None) -> None:
        self.members[user_id] = {
            "user": self.users[user_id],
            "roles": [str(r) for r in roles or []],
            "joined_at": _now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "pending": False,
        }

    def add_text_channel(self, name: str) -> int:
        cid = self.snowflake()
        self.channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "parent_id": None,
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        self.messages[cid] = []
        return cid

    def add_webhook(self, channel_id: int, name: str) -> int:
        wid = self.snowflake()
        self.webhooks[wid] = {
            "id": str(wid),
            "type": 1,
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "name": name,
            "avatar": None,
            "token": secrets.token_urlsafe(24),
        }
        return wid

    def guild_payload(self) -> Json:
        threads = [c for c in self.channels.values() if c["type"] in (11, 12)]
        return {
            **self.guild,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": list(self.members.values()),
            "channels": [c for c in self.channels.values() if c["type"] not in (11, 12)],
            "threads": threads,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------ messages

    def new_message(
        self,
        channel_id: int,
        author: Json,
        content: str = "",
        *,
        embeds: list[Json] | None = None,
        components: list[Json] | None = None,
        attachments: list[Json] | None = None,
        flags: int = 0,
        webhook_id: int | None = None,
        reference: Json | None = None,
        allowed_mentions: Json | None = None,
        interaction: Interaction | None = None,
        mention_roles_allowed: bool = False,
    ) -> Json:
        mid = self.snowflake()
        users, roles = self._pings(content, allowed_mentions, mention_roles_allowed)
        message: Json = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.users[u] for u in users if u in self.users],
            "mention_roles": [str(r) for r in roles],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "components": components or [],
            "reactions": [],
            "pinned": False,
            "type": 19 if reference else (20 if interaction is not None else 0),
            "flags": flags,
        }
        if webhook_id is not None:
            message["webhook_id"] = str(webhook_id)
        if reference is not None:
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reference.get("message_id")),
                "channel_id": str(reference.get("channel_id") or channel_id),
                "guild_id": str(self.guild_id),
            }
            # a reply carries the message it answers (null when that one is gone)
            answered = (
                self.find_message(int(reference["message_id"]))
                if reference.get("message_id") is not None
                else None
            )
            message["referenced_message"] = self.public(answered) if answered is not None else None
        if interaction is not None:
            message["webhook_id"] = str(self.app_id)
            message["application_id"] = str(self.app_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.users[interaction.user_id],
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
        # what the test reads: who this message pinged, and what the bot asked for
        message["_pinged_users"] = sorted(users)
        message["_pinged_roles"] = sorted(roles)
        message["_allowed_mentions"] = allowed_mentions
        self.messages.setdefault(channel_id, []).append(message)
        self._by_id[mid] = message
        if channel_id in self.channels:
            self.channels[channel_id]["last_message_id"] = str(mid)
        if not flags & EPHEMERAL:
            self.dispatch("MESSAGE_CREATE", self._with_member(message))
        return message

    def _pings(
        self, content: str, allowed: Json | None, roles_allowed: bool
    ) -> tuple[list[int], list[int]]:
        users = [int(u) for u in re.findall(r"<@!?(\d+)>", content)]
        roles = [int(r) for r in re.findall(r"<@&(\d+)>", content)]
        if allowed is not None:
            parse = allowed.get("parse") or []
            allowed_users = {int(u) for u in allowed.get("users") or []}
            allowed_roles = {int(r) for r in allowed.get("roles") or []}
            users = [u for u in users if "users" in parse or u in allowed_users]
            roles = [r for r in roles if "roles" in parse or r in allowed_roles]
        roles = [
            r for r in roles if r in self.roles and (self.roles[r]["mentionable"] or roles_allowed)
        ]
        return sorted(set(users)), sorted(set(roles))

    def _with_member(self, message: Json) -> Json:
        out = {k: v for k, v in message.items() if not k.startswith("_")}
        author_id = int(message["author"]["id"])
        if author_id in self.members and "webhook_id" not in message:
            member = dict(self.members[author_id])
            member.pop("user", None)
            out["member"] = member
        return out

    def public(self, message: Json) -> Json:
        """A message as REST answers it (reactions counted for the bot)."""
        out = {k: v for k, v in message.items() if not k.startswith("_")}
        out["reactions"] = [
            {
                "emoji": {"id": None, "name": emoji},
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": self.bot_id in users,
                "me_burst": False,
                "burst_colors": [],
            }
            for emoji, users in self.reactions.get(int(message["id"]), {}).items()
            if users
        ]
        return out

    def find_message(self, message_id: int) -> Json | None:
        return self._by_id.get(message_id)

    def _forget_message(self, message: Json) -> None:
        self.messages[int(message["channel_id"])].remove(message)
        del self._by_id[int(message["id"])]

    def edit_message(self, message: Json, changes: Json) -> Json:
        for key in ("content", "embeds", "components", "flags", "attachments"):
            if key in changes and changes[key] is not None:
                message[key] = changes[key]
        if "allowed_mentions" in changes:
            message["_allowed_mentions"] = changes["allowed_mentions"]
        message["edited_timestamp"] = _now_iso()
        message.setdefault("_edits", 0)
        message["_edits"] += 1
        if not message["flags"] & EPHEMERAL:
            self.dispatch("MESSAGE_UPDATE", self._with_member(message))
        return message

    def set_reaction(self, message: Json, emoji: str, user_id: int, on: bool) -> bool:
        users = self.reactions.setdefault(int(message["id"]), {}).setdefault(emoji, [])
        if on == (user_id in users):
            return False
        if on:
            users.append(user_id)
        else:
            users.remove(user_id)
        event: Json = {
            "user_id": str(user_id),
            "channel_id": message["channel_id"],
            "message_id": message["id"],
            "guild_id": str(self.guild_id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if on:
            if user_id in self.members:
                event["member"] = self.members[user_id]
            event["message_author_id"] = message["author"]["id"]
            self.dispatch("MESSAGE_REACTION_ADD", event)
        else:
            self.dispatch("MESSAGE_REACTION_REMOVE", event)
        return True

    # ------------------------------------------------------------------ the gateway

    def dispatch(self, event: str, data: Json) -> None:
        """Send a dispatch on the guild's shard's live connection (with ``twin_sessions``, on
        each session there whose READY went out); kept for a RESUME either way."""
        if self.twin_sessions:
            for session in self.twins:
                if session.ready:
                    self._dispatch_to(session, event, data)
        elif self.session is not None:
            self._dispatch_to(self.session, event, data)

    def _dispatch_to(self, session: Session, event: str, data: Json) -> None:
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.sent.append(payload)
        if session.ws is not None and not session.ws.closed:
            self._send_soon(session.ws, payload)

    def _send_soon(self, ws: web.WebSocketResponse, payload: Json) -> None:
        assert self.loop is not None
        # one writer at a time, in order
        self._outbox = getattr(self, "_outbox", None) or asyncio.Lock()
        lock = self._outbox

        async def send() -> None:
            async with lock:
                with contextlib.suppress(Exception):
                    await ws.send_str(json.dumps(payload))

        self.loop.create_task(send())

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        await self.gateway_gate.wait()
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}, "s": None, "t": None})
        )
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            op = data.get("op")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:
                if data["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                shard = data["d"].get("shard") or [0, 1]
                if int(shard[1]) != self.shard_count or not 0 <= int(shard[0]) < self.shard_count:
                    self.failures.append(
                        Failure("gateway", "IDENTIFY", "/", f"shard {shard} of {self.shard_count}")
                    )
                    await ws.close(code=4010, message=b"Invalid shard.")
                    break
                self._identify(ws, int(shard[0]))
            elif op == 6:
                await self._resume(ws, data["d"])
            elif op == 8:
                asking = next((s for s in self.shard_sessions.values() if s.ws is ws), None)
                asking = next((s for s in self.twins if s.ws is ws), asking)
                self._dispatch_to(
                    asking or self.session,  # type: ignore[arg-type]
                    "GUILD_MEMBERS_CHUNK",
                    {
                        "guild_id": str(self.guild_id),
                        "members": list(self.members.values()),
                        "chunk_index": 0,
                        "chunk_count": 1,
                        "nonce": data["d"].get("nonce"),
                    },
                )
        for session in [*self.shard_sessions.values(), *self.twins]:
            if session.ws is ws:
                session.ws = None
        return ws

    def guild_shard(self) -> int:
        return (self.guild_id >> 22) % self.shard_count

    def _identify(self, ws: web.WebSocketResponse, shard: int) -> None:
        now = time.monotonic()
        bucket = shard % self.max_concurrency
        last = max(
            (at for at, s in self.identifies if s % self.max_concurrency == bucket), default=None
        )
        if last is not None and now - last < IDENTIFY_WINDOW_S:
            self.failures.append(
                Failure(
                    "gateway",
                    "IDENTIFY",
                    "/",
                    f"shard {shard}: a second IDENTIFY in bucket {bucket} {now - last:.2f} s "
                    f"after the last (max_concurrency {self.max_concurrency} per 5 s)",
                )
            )
        before = self.shard_sessions.get(shard)
        live = before is not None and before.ws is not None and not before.ws.closed
        if live and not self.twin_sessions:
            # Discord would take it, and send both every event: two owners of one shard
            self.failures.append(
                Failure("gateway", "IDENTIFY", "/", f"shard {shard}: a second live session")
            )
        self.identifies.append((now, shard))
        self.identified += 1
        session = Session(id=secrets.token_hex(16), ws=ws, shard=shard)
        self.shard_sessions[shard] = session
        ours = bool(self.guild_id) and shard == self.guild_shard()
        if ours or self.shard_count == 1:
            self.session = session
            if self.twin_sessions:
                self.twins.append(session)

        def ready() -> None:
            session.ready = True
            self._dispatch_to(
                session,
                "READY",
                {
                    "v": 10,
                    "user": {**self.users[self.bot_id], "verified": True, "mfa_enabled": False},
                    "guilds": [{"id": str(self.guild_id), "unavailable": True}] if ours else [],
                    "session_id": session.id,
                    "resume_gateway_url": f"ws://127.0.0.1:{self.port}/",
                    "application": {"id": str(self.app_id), "flags": 0},
                    "private_channels": [],
                    "relationships": [],
                    "presences": [],
                    "session_type": "normal",
                    "shard": [shard, self.shard_count],
                },
            )
            if ours:
                self._dispatch_to(session, "GUILD_CREATE", self.guild_payload())

        if self.hold_ready:
            self._held_ready.append(ready)
        else:
            ready()

    def release_ready(self) -> int:
        """Send the READY (and the guild) each session identified since ``hold_ready`` was
        set waits for, all at once, and stop holding; how many were sent."""
        held, self._held_ready = self._held_ready, []
        self.hold_ready = False
        for ready in held:
            ready()
        return len(held)

    def held_ready(self) -> int:
        """How many sessions wait for their READY."""
        return len(self._held_ready)

    def hold(self, method: str, prefix: str) -> None:
        """Requests of ``method`` on a path starting with ``prefix`` (``/channels/1/messages``)
        wait at a gate (:meth:`waiting`) until :meth:`release` lets them through. The time an
        interaction's answer waits there is the test's, not the bot's: its 3 s do not count it."""
        self._gates.setdefault((method, prefix), [])

    def waiting(self, method: str, prefix: str) -> list[Any]:
        """The bodies of the requests waiting at the gate, in arrival order."""
        return [body for body, _ in self._gates.get((method, prefix), [])]

    def release(
        self, method: str, prefix: str, matching: Callable[[Any], bool] | None = None
    ) -> int:
        """Let the requests waiting at the gate whose body is ``matching`` through (the gate
        stays), or, without ``matching``, all of them and open the gate. How many went."""
        if matching is None:
            waiters = self._gates.pop((method, prefix), [])
        else:
            waiters = [w for w in self._gates.get((method, prefix), []) if matching(w[0])]
            for waiter in waiters:
                self._gates[(method, prefix)].remove(waiter)
        for _, go in waiters:
            go.set()
        return len(waiters)

    async def _resume(self, ws: web.WebSocketResponse, data: Json) -> None:
        session = next(
            (
                s
                for s in [*self.shard_sessions.values(), *self.twins]
                if s.id == data.get("session_id")
            ),
            None,
        )
        if session is None:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        self.resumed += 1
        session.ws = ws
        last = int(data.get("seq") or 0)
        for payload in session.sent:
            if payload["s"] > last:
                self.replayed.append(payload["t"])
                self._send_soon(ws, payload)
        self._dispatch_to(session, "RESUMED", {})

    async def drop_gateway(self, *, hold: bool) -> None:
        """Close the bot's connection (4000: reconnect and resume); with ``hold``, its next
        connection waits for :meth:`release_gateway` before its HELLO."""
        if hold:
            self.gateway_gate.clear()
        session = self.session
        if session is not None and session.ws is not None:
            ws, session.ws = session.ws, None
            await ws.close(code=4000, message=b"stand-in drops the connection")

    def release_gateway(self) -> None:
        self.gateway_gate.set()

    async def send_interaction(self, interaction: Interaction, payload: Json) -> None:
        self.interactions[interaction.id] = interaction
        self.dispatch("INTERACTION_CREATE", payload)

    # ------------------------------------------------------------------ REST

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        found = self.attachments.get(int(request.match_info["id"]))
        if found is None:
            return web.Response(status=404)
        _name, data, kind = found
        return web.Response(body=data, content_type=kind)

    def _bucket_headers(self, key: str) -> dict[str, str]:
        if not self.limits:
            # a bucket too large to run out: without one, discord.py sends one request to a
            # route at a time until it learns the limit
            return {
                "X-RateLimit-Limit": "1000000",
                "X-RateLimit-Remaining": "999999",
                "X-RateLimit-Reset-After": "1.000",
                "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Bucket": f"{abs(hash(key)):x}",
                "Via": "1.1 stand-in",
            }
        now = time.monotonic()
        window = self._buckets.setdefault(key, [now, 0])
        if now - window[0] >= BUCKET_WINDOW_S:
            window[0], window[1] = now, 0
        window[1] += 1
        reset_after = max(0.0, BUCKET_WINDOW_S - (now - window[0]))
        return {
            "X-RateLimit-Limit": str(BUCKET_LIMIT),
            "X-RateLimit-Remaining": str(max(0, BUCKET_LIMIT - int(window[1]))),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"{abs(hash(key)):x}",
            "Via": "1.1 stand-in",
        }

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        operation = self.spec.match(method, path)
        body, files, problem = await self._read_body(request)
        multipart = request.content_type == "multipart/form-data"
        template = operation.template if operation is not None else path
        handler = self._handler(method, template)
        if operation is None or handler is None:
            why = "not in Discord's spec" if operation is None else "not served by the stand-in"
            self.failures.append(Failure("unknown-route", method, path, why))
            self.calls.append(Call(method, template, path, 404, body))
            return _error(404, 0, f"404: Not Found ({why})")
        problems = [problem] if problem is not None else []
        if problem is None and body is not None:
            problems += self.spec.problems(operation, body)
        if files:
            problems += self.spec.file_field_problems([name for name, *_ in files])
        if multipart and operation is not None and not operation.multipart:
            problems.append(f"a multipart body: {method} {template} takes JSON only")
        if problems:
            # Discord answers a body it does not take with 400, and does nothing
            self.failures += [Failure("spec", method, path, found) for found in problems]
            self.calls.append(Call(method, template, path, 400, body))
            return _error(400, 50035, "Invalid Form Body", {"_errors": problems})
        gate = next(
            (
                w
                for (m, prefix), w in self._gates.items()
                if m == method and path.startswith(prefix)
            ),
            None,
        )
        if gate is not None:  # a test holds it here (hold), until it lets it through
            go = asyncio.Event()
            gate.append((body, go))
            held = time.monotonic()
            await go.wait()
            request[HELD_S] = time.monotonic() - held
        params = _params(template, path)
        major = params.get("channel_id") or params.get("guild_id") or params.get("webhook_id")
        major = major or params.get("interaction_id") or ""
        key = f"{method} {template} {major}"
        count = self._route_counts[key] = self._route_counts.get(key, 0) + 1
        headers = self._bucket_headers(key)
        limited = self.limits and count % RATE_LIMIT_EVERY == 0
        if limited and not template.startswith("/interactions/"):
            self.rate_limited += 1
            self.calls.append(Call(method, template, path, 429, body))
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user"})
            headers["Retry-After"] = f"{RETRY_AFTER_S}"
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": RETRY_AFTER_S,
                    "global": False,
                },
                429,
                headers,
            )
        try:
            response = await handler(request, params, body or {}, files)
        except _Refused as refused:
            found = Failure(refused.kind, method, path, refused.detail)
            (self.raced if refused.kind == "raced" else self.failures).append(found)
            response = refused.response
        self.calls.append(Call(method, template, path, response.status, body))
        response.headers.update(headers)
        return response

    async def _read_body(
        self, request: web.Request
    ) -> tuple[Any, list[tuple[str, str, bytes, str]], str | None]:
        kind = request.content_type
        if not request.can_read_body:
            return None, [], None
        if kind == "multipart/form-data":
            payload: Any = None
            files: list[tuple[str, str, bytes, str]] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                data = await part.read(decode=False)
                if name == "payload_json":
                    payload = json.loads(data)
                else:
                    files.append(
                        (
                            name,
                            part.filename or "file",
                            bytes(data),
                            part.headers.get("Content-Type", "application/octet-stream"),
                        )
                    )
            return payload, files, None
        raw = await request.read()
        if not raw:
            return None, [], None
        if kind != "application/json":
            return None, [], f"a body of type {kind!r}, not application/json"
        try:
            return json.loads(raw), [], None
        except ValueError:
            return None, [], "a body that is not JSON"

    def _handler(
        self, method: str, template: str
    ) -> Callable[[web.Request, dict[str, str], Any, list[Any]], Awaitable[web.Response]] | None:
        found = _ROUTES.get((method, template))
        return functools.partial(found, self) if found is not None else None

    # -- the checks Discord makes on a message

    def _check_message(self, body: Json, files: list[Any]) -> None:
        content = body.get("content") or ""
        if len(content) > MESSAGE_LIMIT:
            raise _Refused(
                "limit",
                f"content is {len(content)} characters (Discord takes {MESSAGE_LIMIT})",
                _error(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "content": {
                            "_errors": [
                                {
                                    "code": "BASE_TYPE_MAX_LENGTH",
                                    "message": "Must be 2000 or fewer in length.",
                                }
                            ]
                        }
                    },
                ),
            )
        total = sum(_embed_length(e) for e in body.get("embeds") or [])
        if total > EMBED_TOTAL_LIMIT:
            raise _Refused(
                "limit",
                f"embeds total {total} characters (Discord takes {EMBED_TOTAL_LIMIT})",
                _error(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "embeds": {
                            "_errors": [
                                {
                                    "code": "MAX_EMBED_SIZE_EXCEEDED",
                                    "message": "Embed size exceeds maximum size of 6000",
                                }
                            ]
                        }
                    },
                ),
            )
        size = sum(len(data) for _n, _f, data, _k in files)
        if size > ATTACHMENT_LIMIT:
            raise _Refused(
                "limit",
                f"attachments of {size} bytes (Discord takes {ATTACHMENT_LIMIT})",
                _error(413, 40005, "Request entity too large"),
            )

    def _attach(
        self, files: list[tuple[str, str, bytes, str]], listed: list[Json] | None = None
    ) -> list[Json]:
        """The uploaded ``files[n]`` as attachments, each with the description the body's
        ``attachments`` gives the entry whose ``id`` is its ``n``."""
        about = {str(a.get("id")): a for a in listed or []}
        out = []
        for name, filename, data, sent_as in files:
            match = _FILE_PART.match(name)
            entry = about.get(match.group(1)) if match is not None else None
            # Discord names the media type itself (discord.py sends every part as
            # application/octet-stream), and gives an image's size
            kind = mimetypes.guess_type(filename)[0] or sent_as
            aid = self.snowflake()
            self.attachments[aid] = (filename, data, kind)
            url = f"{self.url}/attachments/{aid}/{filename}"
            attachment: Json = {
                "id": str(aid),
                "filename": filename,
                "size": len(data),
                "url": url,
                "proxy_url": url,
                "content_type": kind,
            }
            if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
                attachment["width"], attachment["height"] = struct.unpack(">II", data[16:24])
            if entry is not None and entry.get("description"):
                attachment["description"] = entry["description"]
            out.append(attachment)
        return out

    def _attachments_after_edit(
        self, message: Json, body: Json, files: list[tuple[str, str, bytes, str]]
    ) -> list[Json] | None:
        """A message's attachments after an edit, as Discord documents it (Uploading Files):
        with ``attachments`` in the body, the message keeps the earlier ones it lists (by id)
        and gains the new ``files[n]`` it lists (by ``n``), all others dropped; without it,
        the earlier ones stay and the new files are added. None: nothing changes."""
        listed = body.get("attachments")
        if listed is None:
            return [*message["attachments"], *self._attach(files)] if files else None
        ids = {str(a.get("id")) for a in listed}
        kept = [a for a in message["attachments"] if a["id"] in ids]
        new = [f for f in files if (m := _FILE_PART.match(f[0])) is not None and m.group(1) in ids]
        return [*kept, *self._attach(new, listed)]

    def _channel(self, params: dict[str, str]) -> Json:
        channel = self.channels.get(int(params["channel_id"]))
        if channel is None:
            raise _Refused("limit", "unknown channel", _error(404, 10003, "Unknown Channel"))
        return channel

    def _message(self, params: dict[str, str]) -> Json:
        message = self.find_message(int(params["message_id"]))
        if message is None or message["channel_id"] != params["channel_id"]:
            raise _Refused("limit", "unknown message", _error(404, 10008, "Unknown Message"))
        return message

    def _bot_author(self) -> Json:
        return self.users[self.bot_id]

    def _roles_allowed(self) -> bool:
        return True  # the bot's role holds Mention @everyone

    # -- the routes

    # -- OAuth2 (https://discord.com/developers/docs/topics/oauth2)

    async def _oauth_authorize(self, request: web.Request) -> web.Response:
        """Discord's authorize page: the request checked as Discord checks it; then, for the
        logged-in :attr:`oauth_user`, straight back to the redirect URI with a code and the
        state (as after Authorize), or ``error=access_denied`` (Cancel); with no one logged
        in, a page that waits there."""
        query = request.query
        problems = []
        if query.get("client_id") != str(self.app_id):
            problems.append("Unknown client_id")
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        scopes = query.get("scope", "").split()
        if not scopes or not set(scopes) <= OAUTH_SCOPES:
            problems.append(f"Invalid scope {query.get('scope', '')!r}")
        redirect = query.get("redirect_uri", "")
        if redirect not in self.oauth_redirects:
            problems.append("Invalid OAuth2 redirect_uri")
        challenge = query.get("code_challenge")
        if challenge is not None and query.get("code_challenge_method") != "S256":
            problems.append("code_challenge_method must be S256")
        if problems:
            self.failures.append(Failure("oauth", "GET", "/oauth2/authorize", "; ".join(problems)))
            return web.Response(status=400, text="; ".join(problems))
        if self.oauth_user is None:
            names = ", ".join(scopes)
            return web.Response(
                text=f"<!doctype html><title>Discord</title><h1 id='authorize'>Log in to "
                f"Discord to authorize Conductor ({names})</h1>",
                content_type="text/html",
            )
        state = query.get("state")
        back: dict[str, str] = {}
        if self.oauth_denies:
            back["error"] = "access_denied"
            back["error_description"] = (
                "The resource owner or authorization server denied the request"
            )
        else:
            code = secrets.token_urlsafe(24)
            back["code"] = code
            self.oauth_codes[code] = {
                "user_id": self.oauth_user,
                "scopes": scopes,
                "redirect_uri": redirect,
                "challenge": challenge,
                "expires": time.monotonic() + OAUTH_CODE_TTL_S,
            }
        if state is not None:
            back["state"] = state
        raise web.HTTPFound(f"{redirect}?{urlencode(back)}")

    async def _oauth_token(self, request: web.Request) -> web.Response:
        """The code for a token (``authorization_code`` only): a form body, the client
        authenticated by its secret (in the form or HTTP Basic), the code once and
        unexpired, the same redirect URI, and PKCE's verifier when the code was asked with a
        challenge. Errors as RFC 6749 says (``{"error": …, "error_description": …}``)."""
        if request.content_type != "application/x-www-form-urlencoded":
            self.failures.append(
                Failure("oauth", "POST", "/oauth2/token", f"a body of {request.content_type}")
            )
            return _json({"error": "invalid_request"}, 400)
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != str(self.app_id) or not secrets.compare_digest(
            secret.encode(), self.client_secret.encode()
        ):
            return _json({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code":
            return _json({"error": "unsupported_grant_type"}, 400)
        grant = self.oauth_codes.pop(str(form.get("code", "")), None)

        def invalid(why: str) -> web.Response:
            return _json({"error": "invalid_grant", "error_description": why}, 400)

        if grant is None or grant["expires"] < time.monotonic():
            return invalid('Invalid "code" in request.')
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return invalid('Invalid "redirect_uri" in request.')
        if grant["challenge"] is not None:
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode()).digest()
            made = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or not secrets.compare_digest(made, grant["challenge"]):
                return invalid('Invalid "code_verifier" in request.')
        token = secrets.token_urlsafe(24)
        self.oauth_tokens[token] = grant
        return _json(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 604800,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": " ".join(grant["scopes"]),
            }
        )

    def _bearer(self, request: web.Request, scope: str) -> Json | None:
        """The grant behind a ``Bearer`` token that holds ``scope``."""
        header = request.headers.get("Authorization", "")
        grant = (
            self.oauth_tokens.get(header.removeprefix("Bearer "))
            if header.startswith("Bearer ")
            else None
        )
        return grant if grant is not None and scope in grant["scopes"] else None

    async def r_my_member(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        grant = self._bearer(request, "guilds.members.read")
        if grant is None:
            return _error(401, 0, "401: Unauthorized")
        member = self.members.get(grant["user_id"])
        if int(params["guild_id"]) != self.guild_id or member is None:
            return _error(404, 10004, "Unknown Guild")
        return _json(member)

    async def r_me(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        if request.headers.get("Authorization", "").startswith("Bearer "):
            grant = self._bearer(request, "identify")
            if grant is None:
                return _error(401, 0, "401: Unauthorized")
            return _json(self.users[grant["user_id"]])
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        return _json(
            {**self.users[self.bot_id], "verified": True, "mfa_enabled": False, "locale": "en-US"}
        )

    async def r_application(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        return _json(
            {
                "id": str(self.app_id),
                "name": "Conductor",
                "icon": None,
                "description": "",
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "owner": self.users[self.bot_id],
                "team": None,
                "summary": "",
                "rpc_origins": [],
                "interactions_endpoint_url": None,
                "bot": self.users[self.bot_id],
            }
        )

    async def r_gateway_bot(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        return _json(
            {
                "url": f"ws://127.0.0.1:{self.port}",
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000 - self.identified,
                    "reset_after": 0,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def r_get_commands(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        return _json(self.commands)

    async def r_put_commands(
        self, request: web.Request, params: dict[str, str], body: Any, files: list[Any]
    ) -> web.Response:
        commands = []
        for command in body or []:
            commands.append(
                {
                    "default_member_permissions": None,
                    "dm_permission": True,
                    "nsfw": False,
                    "contexts": None,
                    "integration_types": [0],
                    **command,
                    "id": str(self.snowflake()),
                    "application_id": str(self.app_id),
                    "guild_id": params["guild_id"],
                    "version": str(self.snowflake()),
                    "type": command.get("type", 1),
                }
            )
        self.commands = commands
        return _json(commands)

    async def r_get_channel(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        return _json(self._channel(params))

    async def r_patch_channel(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        channel = self._channel(params)
        if "name" in body:
            channel["name"] = body["name"]
        meta = channel.get("thread_metadata")
        if meta is not None:
            for key in ("archived", "locked", "auto_archive_duration"):
                if key in body:
                    meta[key] = body[key]
        self.dispatch("THREAD_UPDATE" if meta is not None else "CHANNEL_UPDATE", channel)
        return _json(channel)

    async def r_post_message(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        channel = self._channel(params)
        self._check_message(body, files)
        message = self.new_message(
            int(channel["id"]),
            self._bot_author(),
            body.get("content") or "",
            embeds=body.get("embeds"),
            components=body.get("components"),
            attachments=self._attach(files, body.get("attachments")),
            reference=body.get("message_reference"),
            allowed_mentions=body.get("allowed_mentions"),
            flags=int(body.get("flags") or 0),
            mention_roles_allowed=self._roles_allowed(),
        )
        return _json(self.public(message))

    async def r_get_messages(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        channel = self._channel(params)
        messages = [
            m for m in self.messages.get(int(channel["id"]), []) if not m["flags"] & EPHEMERAL
        ]
        limit = int(request.query.get("limit", 50))
        if "after" in request.query:
            after = int(request.query["after"])
            chosen = [m for m in messages if int(m["id"]) > after][:limit]
        elif "around" in request.query:
            around = int(request.query["around"])
            chosen = [m for m in messages if int(m["id"]) == around]
        else:
            before = int(request.query.get("before", 1 << 63))
            chosen = [m for m in messages if int(m["id"]) < before][-limit:]
        return _json([self.public(m) for m in reversed(chosen)])

    async def r_get_message(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        return _json(self.public(self._message(params)))

    async def r_patch_message(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._message(params)
        if int(message["author"]["id"]) != self.bot_id:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        self._check_message(body, files)
        body = {**body, "attachments": self._attachments_after_edit(message, body, files)}
        return _json(self.public(self.edit_message(message, body)))

    async def r_delete_message(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._message(params)
        self._forget_message(message)
        self.dispatch(
            "MESSAGE_DELETE",
            {
                "id": message["id"],
                "channel_id": message["channel_id"],
                "guild_id": str(self.guild_id),
            },
        )
        return web.Response(status=204)

    async def r_put_reaction(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._message(params)
        self.set_reaction(message, params["emoji_name"], self.bot_id, True)
        return web.Response(status=204)

    async def r_delete_reaction(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._message(params)
        user = params.get("user_id")
        self.set_reaction(message, params["emoji_name"], int(user) if user else self.bot_id, False)
        return web.Response(status=204)

    async def r_get_reactions(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._message(params)
        users = sorted(self.reactions.get(int(message["id"]), {}).get(params["emoji_name"], []))
        after = int(request.query.get("after", 0))
        limit = int(request.query.get("limit", 25))
        return _json([self.users[u] for u in users if u > after][:limit])

    async def r_pin(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._message(params)
        message["pinned"] = True
        self.dispatch(
            "CHANNEL_PINS_UPDATE",
            {
                "guild_id": str(self.guild_id),
                "channel_id": message["channel_id"],
                "last_pin_timestamp": _now_iso(),
            },
        )
        self.dispatch("MESSAGE_UPDATE", self._with_member(message))
        return web.Response(status=204)

    async def r_create_thread(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        thread = self.add_thread(
            int(self._channel(params)["id"]),
            body["name"],
            kind=int(body.get("type") or 11),
            archive_after=int(body.get("auto_archive_duration") or 4320),
        )
        return _json(thread, 201)

    def add_thread(
        self, parent_id: int, name: str, *, kind: int = 11, archive_after: int = 4320
    ) -> Json:
        """A thread of the bot's in ``parent_id`` (what creating one over REST makes)."""
        tid = self.snowflake()
        thread = {
            "id": str(tid),
            "type": kind,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "name": name,
            "owner_id": str(self.bot_id),
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive_after,
                "archive_timestamp": _now_iso(),
                "locked": False,
                "create_timestamp": _now_iso(),
            },
        }
        self.channels[tid] = thread
        self.messages[tid] = []
        self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    async def r_get_member(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        member = self.members.get(int(params["user_id"]))
        if member is None:
            return _error(404, 10007, "Unknown Member")
        return _json(member)

    async def r_get_user(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        user = self.users.get(int(params["user_id"]))
        return _json(user) if user is not None else _error(404, 10013, "Unknown User")

    # -- interactions

    def _interaction(self, params: dict[str, str]) -> Interaction:
        found = self.interactions.get(int(params["interaction_id"]))
        if found is None or found.token != params["interaction_token"]:
            raise _Refused(
                "interaction", "unknown interaction", _error(404, 10062, "Unknown interaction")
            )
        return found

    def _by_token(self, params: dict[str, str]) -> Interaction:
        if int(params["webhook_id"]) != self.app_id:
            raise _Refused("interaction", "unknown webhook", _error(404, 10015, "Unknown Webhook"))
        for interaction in self.interactions.values():
            if interaction.token == params["webhook_token"]:
                if not interaction.responded:
                    raise _Refused(
                        "interaction",
                        "a followup before the initial response",
                        _error(404, 10015, "Unknown Webhook"),
                    )
                return interaction
        raise _Refused("interaction", "unknown token", _error(404, 10015, "Unknown Webhook"))

    async def r_callback(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        interaction = self._interaction(params)
        late = time.monotonic() - interaction.created - request.get(HELD_S, 0.0)
        if interaction.responded:
            raise _Refused(
                "raced" if self.twin_sessions else "interaction",
                f"a second initial response (type {body.get('type')}) to interaction {interaction.id}",
                _error(400, 40060, "Interaction has already been acknowledged."),
            )
        if late > INTERACTION_DEADLINE_S:
            raise _Refused(
                "interaction",
                f"the initial response came after {late:.2f} s (Discord gives 3 s)",
                _error(404, 10062, "Unknown interaction"),
            )
        kind = int(body["type"])
        data = body.get("data") or {}
        interaction.responded = True
        interaction.response_type = kind
        resource: Json = {"type": kind}
        flags = int(data.get("flags") or 0)
        if kind in (4, 5):
            self._check_message(data, files)
            message = self.new_message(
                interaction.channel_id,
                self._bot_author(),
                data.get("content") or "",
                embeds=data.get("embeds"),
                components=data.get("components"),
                attachments=self._attach(files, data.get("attachments")),
                flags=(flags & EPHEMERAL) | (LOADING if kind == 5 else 0),
                allowed_mentions=data.get("allowed_mentions"),
                interaction=interaction,
                mention_roles_allowed=self._roles_allowed(),
            )
            message["_for"] = interaction.user_id
            interaction.original = int(message["id"])
            resource["message"] = self.public(message)
        elif kind == 7 and interaction.message_id is not None:
            target = self.find_message(interaction.message_id)
            if target is not None:
                self._check_message(data, files)
                self.edit_message(target, data)
                interaction.original = interaction.message_id
                resource["message"] = self.public(target)
        elif kind == 6:
            interaction.original = interaction.message_id
        elif kind == 9:
            interaction.modal = data
        return _json(
            {
                "interaction": {
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "response_message_id": str(interaction.original)
                    if interaction.original
                    else None,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(flags & EPHEMERAL),
                },
                "resource": resource,
            }
        )

    async def r_followup(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        interaction = self._by_token(params)
        self._check_message(body, files)
        message = self.new_message(
            interaction.channel_id,
            self._bot_author(),
            body.get("content") or "",
            embeds=body.get("embeds"),
            components=body.get("components"),
            attachments=self._attach(files, body.get("attachments")),
            flags=int(body.get("flags") or 0) & EPHEMERAL,
            allowed_mentions=body.get("allowed_mentions"),
            interaction=interaction,
            mention_roles_allowed=self._roles_allowed(),
        )
        message["_for"] = interaction.user_id
        return _json(self.public(message))

    def _original(self, params: dict[str, str]) -> Json:
        interaction = self._by_token(params)
        mid = params.get("message_id", "@original")
        target_id = interaction.original if mid == "@original" else int(mid)
        message = self.find_message(target_id) if target_id is not None else None
        if message is None:
            raise _Refused("interaction", "unknown message", _error(404, 10008, "Unknown Message"))
        return message

    async def r_get_original(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        return _json(self.public(self._original(params)))

    async def r_patch_original(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._original(params)
        self._check_message(body, files)
        body = {**body, "attachments": self._attachments_after_edit(message, body, files)}
        changes = dict(body)
        changes["flags"] = message["flags"] & ~LOADING
        was_loading = message["flags"] & LOADING
        self.edit_message(message, changes)
        if was_loading:
            # a deferred answer's first edit: Discord now shows who it pings
            users, roles = self._pings(message["content"], body.get("allowed_mentions"), True)
            message["_pinged_users"], message["_pinged_roles"] = users, roles
        return _json(self.public(message))

    async def r_delete_original(
        self, request: web.Request, params: dict[str, str], body: Json, files: list[Any]
    ) -> web.Response:
        message = self._original(params)
        self._forget_message(message)
        if not message["flags"] & EPHEMERAL:
            self.dispatch(
                "MESSAGE_DELETE",
                {
                    "id": message["id"],
                    "channel_id": message["channel_id"],
                    "guild_id": str(self.guild_id),
                },
            )
        return web.Response(status=204)


class _Refused(Exception):
    def __init__(self, kind: str, detail: str, response: web.Response) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.response = kind, detail, response


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _params(template: str, path: str) -> dict[str, str]:
    out = {}
    for name, value in zip(template.strip("/").split("/"), path.strip("/").split("/"), strict=True):
        if name.startswith("{"):
            out[name.strip("{}")] = value
    return out


def _embed_length(embed: Json) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for item in embed.get("fields") or []:
        total += len(item.get("name") or "") + len(item.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


_M = "/channels/{channel_id}/messages"
_W = "/webhooks/{webhook_id}/{webhook_token}"
_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "/users/@me"): StandIn.r_me,
    ("GET", "/users/@me/guilds/{guild_id}/member"): StandIn.r_my_member,
    ("GET", "/oauth2/applications/@me"): StandIn.r_application,
    ("GET", "/applications/@me"): StandIn.r_application,
    ("GET", "/gateway/bot"): StandIn.r_gateway_bot,
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands"): StandIn.r_get_commands,
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): StandIn.r_put_commands,
    ("GET", "/channels/{channel_id}"): StandIn.r_get_channel,
    ("PATCH", "/channels/{channel_id}"): StandIn.r_patch_channel,
    ("POST", _M): StandIn.r_post_message,
    ("GET", _M): StandIn.r_get_messages,
    ("GET", _M + "/{message_id}"): StandIn.r_get_message,
    ("PATCH", _M + "/{message_id}"): StandIn.r_patch_message,
    ("DELETE", _M + "/{message_id}"): StandIn.r_delete_message,
    ("PUT", _M + "/{message_id}/reactions/{emoji_name}/@me"): StandIn.r_put_reaction,
    ("DELETE", _M + "/{message_id}/reactions/{emoji_name}/@me"): StandIn.r_delete_reaction,
    ("DELETE", _M + "/{message_id}/reactions/{emoji_name}/{user_id}"): StandIn.r_delete_reaction,
    ("GET", _M + "/{message_id}/reactions/{emoji_name}"): StandIn.r_get_reactions,
    ("PUT", _M + "/pins/{message_id}"): StandIn.r_pin,
    ("POST", "/channels/{channel_id}/threads"): StandIn.r_create_thread,
    ("GET", "/guilds/{guild_id}/members/{user_id}"): StandIn.r_get_member,
    ("GET", "/users/{user_id}"): StandIn.r_get_user,
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback"): StandIn.r_callback,
    ("POST", _W): StandIn.r_followup,
    ("GET", _W + "/messages/{message_id}"): StandIn.r_get_original,
    ("PATCH", _W + "/messages/{message_id}"): StandIn.r_patch_original,
    ("DELETE", _W + "/messages/{message_id}"): StandIn.r_delete_original,
    ("GET", _W + "/messages/@original"): StandIn.r_get_original,
    ("PATCH", _W + "/messages/@original"): StandIn.r_patch_original,
    ("DELETE", _W + "/messages/@original"): StandIn.r_delete_original,
}
