"""The pinned board in the deployments channel, edited on every release or task change,
re-created when it is deleted."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.client import ConductorBot
from bot.refresh import Refresher
from cogs.board._render import board_embed

log = logging.getLogger(__name__)

RECENT = 6


class BoardCog(commands.Cog):
    def __init__(self, bot: ConductorBot) -> None:
        self.bot = bot
        self.refresher: Refresher[int] = Refresher(self.refresh, name="board")
        #: what each guild's board shows now, so an unchanged board is not edited
        self._shown: dict[int, dict[str, object]] = {}

    async def cog_unload(self) -> None:
        await self.refresher.wait()

    @commands.Cog.listener()
    async def on_conductor_change(self, guild_id: int) -> None:
        self.refresher.touch(guild_id)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        for guild in self.bot.guilds:
            self.refresher.touch(guild.id)

    @commands.Cog.listener("on_guild_join")
    @commands.Cog.listener("on_guild_available")
    async def on_guild(self, guild: discord.Guild) -> None:
        self.refresher.touch(guild.id)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        # Deletions anywhere in the server arrive here: compare with the board this process
        # shows (set by the refresh on ready) rather than reading the database each time.
        if payload.guild_id is None:
            return
        shown = self._shown.get(payload.guild_id)
        if shown is not None and shown["id"] == payload.message_id:
            log.info("the board in guild %s was deleted; posting it again", payload.guild_id)
            self._shown.pop(payload.guild_id, None)
            self.refresher.touch(payload.guild_id)

    async def refresh(self, guild_id: int) -> None:
        """Bring the guild's board up to date: edit it, or post and pin a new one when there
        is none (or it was deleted)."""
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return
        channel = (await self.bot.bindings(guild)).deployments_channel
        if channel is None:
            return
        view = await self.bot.releases.board(guild_id, RECENT)
        embed = board_embed(view.status, view.recent)
        config = await self.bot.guild_configs.get(guild_id)
        stored = message_id = config.board_message_id if config else None
        shown = self._shown.get(guild_id)
        if message_id is not None and shown == {"id": message_id, **embed.to_dict()}:
            return
        if message_id is not None:
            try:
                await channel.get_partial_message(message_id).edit(content=None, embed=embed)
            except discord.NotFound:
                message_id = None  # deleted, or it lives in the previous deployments channel
            else:
                self._shown[guild_id] = {"id": message_id, **embed.to_dict()}
                return
        message = await channel.send(embed=embed)
        board = await self.bot.guild_configs.set_board_message(
            guild_id, message.id, replacing=stored
        )
        if board != message.id:
            # Another process of the bot posted the board since it was read: one board, theirs,
            # showing what this process read (as fresh as what it was posted with, or fresher).
            log.info("another process posted the board in guild %s; deleting ours", guild_id)
            try:
                await message.delete()
            except discord.HTTPException:
                log.warning("could not delete a second board in #%s", channel.name)
            if board is None:
                return
            try:
                await channel.get_partial_message(board).edit(content=None, embed=embed)
            except discord.NotFound:
                return  # theirs is gone too: its process hears it, and posts the board again
            self._shown[guild_id] = {"id": board, **embed.to_dict()}
            return
        self._shown[guild_id] = {"id": message.id, **embed.to_dict()}
        try:
            await message.pin(reason="Conductor's deployments board")
        except discord.HTTPException:
            log.warning("could not pin the board in #%s (missing Pin Messages?)", channel.name)
