"""``/release lock`` and ``/release unlock`` through simcord: open and ship refused while
locked, naming the holder, why and since when; ``/seal`` still runs; the board and
``/release status`` show the lock; a takeover asked, confirmed and recorded; only the holder
unlocks."""

from __future__ import annotations

from typing import Any

import pytest
import simcord

from bot.sample import GUILD_ID
from conductor.states import LockEventKind, ReleaseState
from store.types import utcnow
from tests.helpers import World, held_for, refused, release_by_commands


def board(world: World) -> Any:
    [pinned] = world.deployments.pinned_messages()
    return pinned.embeds[0]


def shown(world: World, result: Any) -> Any:
    """The message answering ``result`` as it stands now (edited since, maybe)."""
    return world.env.backend.messages[result.response.channel_id][result.response.id]


async def another_operator(world: World, name: str = "carl") -> Any:
    member = world.guild.add_member(world.env.create_user(name), roles=[world.operators])
    await world.env.settle()
    return member


async def test_a_lock_stops_open_and_ship_naming_its_holder_and_shows_everywhere(
    world: World,
) -> None:
    slug = await release_by_commands(world)
    locked = await world.olga.slash(world.general, "release lock", reason="db migration tonight")
    assert not locked.ephemeral
    assert locked.response.content == (
        "🔒 The release train is locked by olga: db migration tonight.\n"
        "`/release open` and `/release ship` are refused until `/release unlock`; seals and "
        "rollbacks still run."
    )
    lock = await world.bot.locks.current(GUILD_ID)
    assert lock is not None and lock.holder_id == world.olga.id
    since = lock.since.strftime("%Y-%m-%d %H:%M UTC")
    stamp = int(lock.since.timestamp())
    line = f"🔒 **Locked** by olga since <t:{stamp}:f> (<t:{stamp}:R>) — db migration tonight"

    # The board leads with it; /release status shows it, for anyone.
    assert board(world).description.startswith(line + "\n\n**Active:**")
    embed = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    assert (embed.fields[0].name, embed.fields[0].value) == ("Lock", line)

    # Ship refused before anything starts, naming the holder, why and since when; its holder
    # is stopped too.
    carl = await another_operator(world)
    before = utcnow()
    shipped = await carl.slash(world.general, "release ship")
    held = held_for(shipped.response.content, lock.since, before, utcnow())
    refused(
        world.env,
        shipped,
        f"🔒 Can't ship: the release train is locked by olga since {since} ({held} ago) — db "
        "migration tonight. Ask them to `/release unlock`, or take the lock over with "
        "`/release lock` (it asks you to confirm).",
    )
    refused(
        world.env,
        await world.olga.slash(world.general, "release ship"),
        "It is your lock: `/release unlock` first.",
    )
    assert (await world.bot.releases.get(GUILD_ID, slug)).state is ReleaseState.ASSEMBLED
    assert world.runner.calls == []  # nothing ran

    # Open refused too (after abandoning the assembled one: abandon is not stopped).
    asked = await world.olga.slash(world.general, "release abandon", reason="redo")
    await world.olga.click(asked.response, label="Abandon")
    refused(
        world.env,
        await carl.slash(world.general, "release open", name="next"),
        "🔒 Can't open a release: the release train is locked by olga since",
    )
    assert (await world.bot.releases.status(GUILD_ID)).active is None
    assert board(world).description == (
        line + "\n\nNo active release. An operator opens one once the train is unlocked."
    )

    unlocked = await world.olga.slash(world.general, "release unlock")
    assert unlocked.response.content == (
        f"🔓 Unlocked by olga: the train runs again (it was locked since <t:{stamp}:f> — db "
        "migration tonight)."
    )
    assert "Locked" not in board(world).description
    opened = await carl.slash(world.general, "release open", name="next")
    assert not opened.ephemeral and "Opened `" in opened.response.content


async def test_seal_still_runs_while_locked(world: World) -> None:
    slug = await release_by_commands(world)
    world.runner.then({"/up": "status 503"})
    await world.olga.slash(world.general, "release ship")
    await world.olga.slash(world.general, "release lock", reason="production is red")
    resealed = await world.olga.slash(world.general, "seal")
    assert resealed.response.content.startswith("🟢 Smoke seal: green — 6/6 checks passed")
    release = await world.bot.releases.get(GUILD_ID, slug)
    assert release.seal_status is not None and release.seal_status.value == "green"
    assert await world.bot.locks.current(GUILD_ID) is not None


async def test_another_operator_takes_the_lock_over_after_confirming(world: World) -> None:
    await world.olga.slash(world.general, "release lock", reason="db migration")
    first = await world.bot.locks.current(GUILD_ID)
    assert first is not None
    stamp = int(first.since.timestamp())
    carl = await another_operator(world)

    asked = await carl.slash(world.general, "release lock", reason="hotfix window")
    assert not asked.ephemeral  # the team sees a takeover being asked for
    assert asked.response.content == (
        f"<@{carl.id}> asks to take the release lock over.\n"
        f"🔒 **Locked** by olga since <t:{stamp}:f> (<t:{stamp}:R>) — db migration\n"
        "New reason: hotfix window"
    )
    # Only carl can answer it: olga's press is refused, and nothing changes.
    other = await world.olga.click(asked.response, label="Take over")
    assert other.ephemeral
    assert (
        other.response.content
        == "Only the operator who asked to take the lock over can confirm it."
    )
    assert await world.bot.locks.current(GUILD_ID) == first

    await carl.click(asked.response, label="Take over")
    taken = shown(world, asked)
    assert taken.content == (
        f"🔒 carl took the lock over from olga (held since <t:{stamp}:f> — db migration): "
        "hotfix window.\n`/release open` and `/release ship` are refused until "
        "`/release unlock`; seals and rollbacks still run."
    )
    assert taken.components == []  # the buttons are gone
    lock = await world.bot.locks.current(GUILD_ID)
    assert lock is not None and (lock.holder, lock.reason) == ("carl", "hotfix window")
    [event, *_] = await world.bot.locks.events(GUILD_ID)
    assert (event.kind, event.actor_id, event.previous_holder_id, event.previous_reason) == (
        LockEventKind.TAKEN_OVER,
        carl.id,
        world.olga.id,
        "db migration",
    )
    assert "🔒 **Locked** by carl since" in board(world).description

    # Olga no longer holds it: her unlock is refused, naming carl.
    refused(
        world.env,
        await world.olga.slash(world.general, "release unlock"),
        "🔒 carl holds the release lock since",
    )
    await carl.slash(world.general, "release unlock")
    assert await world.bot.locks.current(GUILD_ID) is None


async def test_a_takeover_left_alone_or_expired_takes_nothing(world: World) -> None:
    await world.olga.slash(world.general, "release lock", reason="db migration")
    first = await world.bot.locks.current(GUILD_ID)
    carl = await another_operator(world)

    asked = await carl.slash(world.general, "release lock", reason="mine now")
    await carl.click(asked.response, label="Leave it")
    left = shown(world, asked)
    assert left.content == "Nothing done: olga still holds the lock."
    assert await world.bot.locks.current(GUILD_ID) == first

    asked = await carl.slash(world.general, "release lock", reason="mine now")
    await world.env.advance_time(61)
    expired = shown(world, asked)
    assert expired.content == "⌛ Nothing done: the confirmation expired."
    with pytest.raises(simcord.SetupError):
        await carl.click(asked.response, label="Take over")
    assert await world.bot.locks.current(GUILD_ID) == first
    assert [e.kind for e in await world.bot.locks.events(GUILD_ID)] == [LockEventKind.LOCKED]


async def test_a_demoted_operator_cannot_confirm_a_takeover_asked_before(world: World) -> None:
    await world.olga.slash(world.general, "release lock", reason="db migration")
    carl = await another_operator(world)
    asked = await carl.slash(world.general, "release lock", reason="mine now")
    world.env.backend.remove_member_role(GUILD_ID, carl.id, world.operators.id)
    await world.env.settle()
    pressed = await carl.click(asked.response, label="Take over")
    assert pressed.ephemeral
    assert pressed.response.content == "Only operators can do this: it needs the `Operators` role."
    lock = await world.bot.locks.current(GUILD_ID)
    assert lock is not None and lock.holder == "olga"


async def test_the_holder_changes_the_reason_and_unlock_needs_a_lock(world: World) -> None:
    refused(
        world.env,
        await world.olga.slash(world.general, "release unlock"),
        "The release train is not locked; there is nothing to unlock.",
    )
    await world.olga.slash(world.general, "release lock", reason="db migration")
    again = await world.olga.slash(world.general, "release lock", reason="db migration, reindex")
    assert again.response.content == (
        "🔒 olga still holds the lock; its reason is now: db migration, reindex "
        "(was: db migration)."
    )
    refused(
        world.env,
        await world.olga.slash(world.general, "release lock", reason="   "),
        "Locking needs a reason",
    )


@pytest.mark.parametrize(
    ("command", "options"), [("release lock", {"reason": "x"}), ("release unlock", {})]
)
async def test_lock_and_unlock_need_the_operator_role(
    world: World, command: str, options: dict[str, str]
) -> None:
    await world.olga.slash(world.general, "release lock", reason="db migration")
    result = await world.bob.slash(world.general, command, **options)
    refused(world.env, result, "Only operators can do this: it needs the `Operators` role.")
    lock = await world.bot.locks.current(GUILD_ID)
    assert lock is not None and (lock.holder, lock.reason) == ("olga", "db migration")


def pings(world: World) -> list[str]:
    """Every message of Conductor's that would notify someone (simcord computes who)."""
    return [
        message.content
        for channel in world.env.backend.messages.values()
        for message in channel.values()
        if message.author_id == world.bot_id
        and (message.ping_user_ids or message.ping_role_ids or message.mention_everyone)
    ]


async def test_a_lock_reason_pings_nobody_and_forges_no_line(world: World) -> None:
    hostile = f"@everyone <@&{world.operators.id}> <@{world.bob.id}> wait\n**for** me"
    locked = await world.olga.slash(world.general, "release lock", reason=hostile)
    assert f"<@{world.bob.id}> wait **for** me." in locked.response.content  # one line
    carl = await another_operator(world)
    asked = await carl.slash(world.general, "release lock", reason=hostile)
    await carl.click(asked.response, label="Take over")
    await world.olga.slash(world.general, "release status")
    assert "wait **for** me" in board(world).description
    assert pings(world) == []
