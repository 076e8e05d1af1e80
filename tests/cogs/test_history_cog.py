"""``/release history [count]`` through simcord: the last shipped releases, newest first, with
their versions, seals (and how many) and rollbacks; anyone may ask; a count out of range is
refused; nothing in it pings."""

from __future__ import annotations

from bot.sample import GUILD_ID
from conductor.views import Actor
from tests.helpers import World, refused, release_by_commands, roll_back_by_machine


async def shipped(world: World, name: str, seal: dict[str, str] | None = None) -> str:
    """``name`` shipped with its one member ``<name>-core`` (confirmed over a held train)."""
    return await release_by_commands(
        world, name=name, tasks=(f"{name}-core",), until="shipped", seal=seal, over_held=True
    )


def stamp(at: object) -> str:
    assert at is not None
    return f"<t:{int(at.timestamp())}:f>"  # type: ignore[attr-defined]


async def test_history_lists_the_last_shipped_releases_with_seals_and_rollbacks(
    world: World,
) -> None:
    empty = await world.bob.slash(world.general, "release history")
    assert empty.response.content == "Nothing has shipped yet."

    one = await shipped(world, "one")
    two = await shipped(world, "two", {"/": "status 500"})
    await world.olga.slash(world.general, "seal")  # two: red, then green
    three = await shipped(world, "three", {"/up": "status 503"})
    hostile = f"@everyone <@{world.bob.id}> checkout broke\nagain"
    await roll_back_by_machine(
        world.bot.database, three, Actor("carl", 502), reason=hostile, guild_id=GUILD_ID
    )
    r1, r2, r3 = [await world.bot.releases.get(GUILD_ID, s) for s in (one, two, three)]

    listed = await world.bob.slash(world.general, "release history")  # anyone may ask
    assert not listed.ephemeral
    assert listed.response.content.splitlines() == [
        "📜 All 3 shipped releases, newest first:",
        f"⏪ `{three}` v3 · no merge SHA · 🔴 red · shipped by olga {stamp(r3.shipped_at)}",
        f"  ⏪ rolled back by carl {stamp(r3.rolled_back_at)}: @everyone <@{world.bob.id}> "
        "checkout broke again",
        f"🚀 `{two}` v2 · no merge SHA · 🟢 green (2 seals) · shipped by olga "
        f"{stamp(r2.shipped_at)} · **in production**",
        f"🚀 `{one}` v1 · no merge SHA · 🟢 green · shipped by olga {stamp(r1.shipped_at)}",
    ]
    newest = await world.bob.slash(world.general, "release history", count=1)
    assert newest.response.content.splitlines()[0] == "📜 The last 1 shipped release, newest first:"
    assert len(newest.response.content.splitlines()) == 3  # v3 and its rollback line
    # nothing of it notifies anyone
    for result in (listed, newest):
        message = world.env.backend.messages[result.response.channel_id][result.response.id]
        assert not (message.ping_user_ids or message.ping_role_ids or message.mention_everyone)


async def test_a_count_out_of_range_is_refused(world: World) -> None:
    for count in (0, 26):
        result = await world.bob.slash(world.general, "release history", count=count)
        refused(
            world.env,
            result,
            f"`count` is how many shipped releases to list: 1 to 25 (default 10); {count} is out "
            "of range.",
        )
