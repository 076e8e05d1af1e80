"""The typed Bot: the settings and the domain (built by ``conductor.bootstrap``) in one place,
cogs loaded in ``setup_hook``."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.ext import commands

from bot.bindings import Bindings, resolve
from bot.publish import DiscordNotes
from bot.reminders import DiscordReminders
from bot.settings import Settings
from bot.tree import ConductorTree
from conductor.bootstrap import Conductor, bootstrap
from conductor.reminders import Clock
from conductor.shards import IDENTIFY_SPACING_S, ShardLeases
from conductor.views import GuildConfigView
from smoke.protocol import SmokeRunner
from store.db import Database

if TYPE_CHECKING:
    from bot.web import BoardServer

log = logging.getLogger(__name__)

#: the cogs, loaded in this order; an explicit list, never a directory scan
EXTENSIONS: tuple[str, ...] = (
    "cogs.board",
    "cogs.release",
    "cogs.task",
    "cogs.handoffs",
    "cogs.reviews",
    "cogs.setup",
    "cogs.seal",
    "cogs.runs",
    "cogs.reminders",
)


def _comparable(command: dict[str, Any]) -> dict[str, Any]:
    """The parts of a command payload that decide whether Discord has the current version."""
    keep = ("name", "description", "type", "required", "autocomplete", "choices", "options")
    out: dict[str, Any] = {}
    for key in keep:
        value = command.get(key)
        if key == "options":
            value = sorted((_comparable(o) for o in value or []), key=lambda o: str(o.get("name")))
        elif key in ("required", "autocomplete"):
            value = bool(value)
        elif key == "type":
            value = int(value or 1)
        elif key == "choices":
            value = [{"name": c["name"], "value": c["value"]} for c in value or []]
        out[key] = value
    return out


#: connections to Discord at most (the gateway's is one of them)
HTTP_CONNECTIONS = 32

#: events after which a guild's channels and roles may resolve differently
_REBINDING = frozenset(
    {
        "guild_channel_create",
        "guild_channel_delete",
        "guild_channel_update",
        "guild_role_create",
        "guild_role_delete",
        "guild_role_update",
        "guild_available",
        "guild_join",
        "guild_update",
    }
)


class ConductorBot(commands.Bot):
    """Conductor's bot. No network until it starts: ``create_bot`` only builds it."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        smoke_runner: SmokeRunner | None = None,
        clock: Clock | None = None,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # handoffs are read from message text
        intents.members = True  # reviewer and operator roles on reactions and checks
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=ConductorTree,
            help_command=None,
            # Mentions are opt-in: text from agents and members (titles, notes, names) never
            # pings; the one message meant to ping (the rollback alert) says exactly whom.
            allowed_mentions=discord.AllowedMentions.none(),
            # No message cache: every listener works from the event's own payload (raw
            # reactions, the handoff's message), so 1,000 cached messages were memory and
            # objects for the collector to walk, never read.
            max_messages=None,
        )
        self.settings = settings
        self._drop_own_echoes()
        #: where the domain's notes go: this bot's channels
        self.discord_notes = DiscordNotes(self, self.bindings, self.release_changed)
        self.conductor: Conductor = bootstrap(
            database_url=settings.database_url,
            database=database,
            required_approvals=settings.required_approvals,
            app=settings.app,
            runner=smoke_runner,
            notes=self.discord_notes,
            git=settings.git,
            deploy=settings.deploy,
            screenshots_dir=settings.screenshots_dir,
            reminders=settings.reminders,
            sizing=settings.sizing,
            reminder_sink=DiscordReminders(self.discord_notes),
            clock=clock,
        )
        # The services the cogs use, each by its name.
        self.database = self.conductor.db
        self.releases = self.conductor.releases
        self.assembly = self.conductor.assembly
        self.tasks = self.conductor.tasks
        self.handoffs = self.conductor.handoffs
        self.reviews = self.conductor.reviews
        self.guild_configs = self.conductor.guilds
        self.seals = self.conductor.seals
        self.sealer = self.conductor.sealer
        self.publisher = self.conductor.publisher
        self.runs = self.conductor.runs
        self.locks = self.conductor.locks
        self.reminders = self.conductor.reminders
        self.sizing = self.conductor.sizing
        #: what ``/conductor setup`` stored, per guild; read once, dropped when setup changes it
        self._stored: dict[int, GuildConfigView | None] = {}
        #: the bindings resolved, per guild, with the guild object they were resolved on
        #: (dropped by :meth:`dispatch` when a channel or role changes, and with ``_stored``)
        self._bound: dict[int, tuple[discord.Guild, Bindings]] = {}
        #: the read-only /deployments page (``[web]``), listening from ``setup_hook``
        self.board_server: BoardServer | None = None
        if settings.web.enabled:
            from bot.web import BoardServer  # noqa: PLC0415 - aiohttp.web: when served
            from bot.web.server import board_source  # noqa: PLC0415

            # the board reads through a small pool of its own, never the commands' one
            source = board_source(
                self.conductor,
                default_guild=settings.guild_id,
                guild_name=self._guild_name,
                gateway=self.gateway_problem,
                commit_url=settings.web.commit_url,
            )
            auth = None
            if settings.web.needs_login and not settings.login_missing():
                from bot.web.auth import Auth  # noqa: PLC0415

                auth = Auth.from_settings(settings, directory=self)
            self.board_server = BoardServer(source, settings.web, threaded=True, auth=auth)

    def member_roles(self, guild_id: int, user_id: int) -> frozenset[int] | None:
        """The board's :class:`bot.web.auth.MemberDirectory`, from the gateway's member
        cache (the members intent; kept by GUILD_MEMBER_* events): the member's role ids
        (``@everyone``'s, the guild id, among them), None when not a member."""
        from bot.web.auth import MembersUnknown  # noqa: PLC0415

        guild = self.get_guild(guild_id)
        if guild is None or not guild.chunked:
            raise MembersUnknown(f"guild {guild_id} is not (yet) in this process's cache")
        member = guild.get_member(user_id)
        if member is None:
            return None
        return frozenset(role.id for role in member.roles)

    def _guild_name(self, guild_id: int) -> str | None:
        guild = self.get_guild(guild_id)
        return guild.name if guild is not None else None

    def gateway_problem(self) -> str | None:
        """None while the gateway is connected; else what is wrong (``/healthz``)."""
        if self.is_closed():
            return "the bot is closed"
        if not self.is_ready():
            return "not connected yet (no READY from Discord)"
        ws = self.ws  # replaced by discord.py on each reconnect
        if ws is None or not ws.open:
            return "disconnected; discord.py is reconnecting"
        return None

    def _drop_own_echoes(self) -> None:
        """Discord echoes back, through the gateway, every reaction the bot adds and every
        edit it makes: most of what a busy train sends it (a handoff's ✅, a review request's
        ✅ and ❌, each request's edit as reviewers approve). No listener here wants them (the
        review cog ignores the bot's own reactions; nothing listens for edits), yet discord.py
        would build a Member or a whole Message for each and schedule its listeners: they are
        dropped before it parses them. An edit carrying components still goes through (a view
        tracked by message follows its edits)."""
        parsers = self._connection.parsers
        reaction_add, message_update = parsers["MESSAGE_REACTION_ADD"], parsers["MESSAGE_UPDATE"]

        def mine(user_id: object) -> bool:
            return (
                self.user is not None and user_id is not None and str(user_id) == str(self.user.id)
            )

        def on_reaction_add(data: dict[str, Any]) -> None:
            if not mine(data.get("user_id")):
                reaction_add(data)

        def on_message_update(data: dict[str, Any]) -> None:
            author = data.get("author") or {}
            if data.get("components") or not mine(author.get("id")):
                message_update(data)

        parsers["MESSAGE_REACTION_ADD"] = on_reaction_add
        parsers["MESSAGE_UPDATE"] = on_message_update

    async def on_message(self, message: discord.Message, /) -> None:
        """Nothing: Conductor has slash commands only, so no message is a command
        (``commands.Bot`` would build a context for each member's message, looking for a
        prefix). Handoffs are heard by the handoffs cog's own listener."""

    async def login(self, token: str) -> None:
        # discord.py's pool, when given none, opens a connection for every request in flight
        # (no limit): a burst of 400 edits opened 400 sockets (TLS handshakes, in
        # production), when Discord takes 50 requests a second from a bot anyway. Bounded,
        # requests wait for a kept-alive connection instead.
        if self.http.connector is discord.utils.MISSING:
            self.http.connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
        await super().login(token)

    async def bindings(self, guild: discord.Guild) -> Bindings:
        """The guild's channels and roles now (stored setup over the config file).

        Resolved once and kept until a channel or role of the guild changes, or the guild is
        created afresh (another session's READY): resolving walks the guild's channels by
        name, and every handoff and reaction asks."""
        bound = self._bound.get(guild.id)
        if bound is not None and bound[0] is guild:
            return bound[1]
        if guild.id not in self._stored:
            self._stored[guild.id] = await self.guild_configs.get(guild.id)
        bindings = resolve(guild, self.settings, self._stored[guild.id])
        self._bound[guild.id] = (guild, bindings)
        return bindings

    def remember_config(self, config: GuildConfigView) -> None:
        """``/conductor setup`` changed the guild's bindings: use them from now on."""
        self._stored[config.guild_id] = config
        self._bound.pop(config.guild_id, None)

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        # discord.py has changed its cache when it dispatches: the next bindings() resolves
        if event_name in _REBINDING:
            self._bound.clear()
        super().dispatch(event_name, *args, **kwargs)

    def release_changed(self, guild_id: int) -> None:
        """Something the board shows changed (listeners: ``on_conductor_change``; the web
        board's snapshot of the guild is read afresh at its next request)."""
        if self.board_server is not None:
            self.board_server.changed(guild_id)
        self.dispatch("conductor_change", guild_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord takes one IDENTIFY per 5 s from a bot on one shard: a process started
        again within that of the last one's IDENTIFY (a crash, a supervisor's quick restart)
        waits for the slot kept in the database, which every process shares (bucket 0; the
        sharded bot has its own buckets). Replaces discord.py's 5 s sleep before a
        re-identify. A database that cannot be read keeps nobody off the gateway: the bot
        then waits the 5 s as discord.py would, once."""
        leases = ShardLeases(self.database, 1)
        while not self.is_closed():
            try:
                wait = await leases.identify_slot(0)
            except Exception as error:
                log.warning("the identify slot is not readable (%s); waiting 5 s", error)
                await asyncio.sleep(5.0)
                return
            if wait <= 0:
                return
            log.info("waiting %.1f s for the identify slot (another IDENTIFY was sent)", wait)
            await asyncio.sleep(min(wait, IDENTIFY_SPACING_S))

    async def setup_hook(self) -> None:
        # A schema behind the code would fail later, one command at a time ("no such table"):
        # refuse to start instead, naming the fix.
        await self.database.require_head()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.board_server is not None:
            await self.board_server.start()  # a port in use is logged; the bot runs on
        await self.sync_commands()
        # Everything loaded so far (modules, cogs, the engine, the commands) lives as long as
        # the process: out of the collector's sight, a full collection no longer walks it and
        # stalls the event loop while handoffs flow (docs/PERFORMANCE.md).
        gc.collect()
        gc.freeze()

    async def on_ready(self) -> None:
        log.info("ready as %s in %d guild(s)", self.user, len(self.guilds))

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync the command tree to the configured guild only when Discord's copy differs
        (syncing is rate-limited and slow to propagate). Returns whether it synced."""
        if self.settings.guild_id is None:
            log.warning("CONDUCTOR_GUILD_ID is not set: slash commands are not synced")
            return False
        guild = discord.Object(self.settings.guild_id)
        self.tree.copy_global_to(guild=guild)
        local = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        if not force:
            try:
                remote: list[dict[str, Any]] = [
                    dict(c.to_dict()) for c in await self.tree.fetch_commands(guild=guild)
                ]
            except discord.HTTPException:
                log.warning("could not fetch the guild's commands; syncing", exc_info=True)
            else:
                key = lambda c: str(c.get("name"))  # noqa: E731
                same = sorted(map(_comparable, local), key=key) == sorted(
                    map(_comparable, remote), key=key
                )
                if same:
                    log.info("slash commands already current in guild %s", guild.id)
                    return False
        await self.tree.sync(guild=guild)
        log.info("slash commands synced to guild %s (%d commands)", guild.id, len(local))
        return True

    async def close(self) -> None:
        if self.board_server is not None:
            await self.board_server.stop()
        await self.handoffs.drain()
        await super().close()
        await self._gateway_closed()
        await self.conductor.close()
        # What setup_hook froze is collectable again: a process that makes many bots (the
        # tests) would otherwise keep each one, held in its own reference cycles, for good.
        gc.unfreeze()

    async def _gateway_closed(self) -> None:
        """After the gateway closed, before the database: the sharded bot lets go of its
        shard leases (``bot.shards``)."""


def create_bot(
    settings: Settings,
    *,
    database: Database | None = None,
    smoke_runner: SmokeRunner | None = None,
    clock: Clock | None = None,
) -> ConductorBot:
    """The configured bot, cogs loaded when it starts (``setup_hook``); no network here.
    ``smoke_runner`` defaults to Playwright in Chromium; ``clock`` (the reminders' sense of
    time) to the database's clock. With ``CONDUCTOR_SHARD_COUNT`` set, the sharded bot
    (``bot.shards``): on the shards whose lease this process holds."""
    if settings.shards is not None:
        from bot.shards import ShardedConductorBot  # noqa: PLC0415 - it imports this module

        return ShardedConductorBot(
            settings, database=database, smoke_runner=smoke_runner, clock=clock
        )
    return ConductorBot(settings, database=database, smoke_runner=smoke_runner, clock=clock)
