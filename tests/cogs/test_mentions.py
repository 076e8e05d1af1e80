"""Mentions are opt-in. Text from agents and members (titles, kinds, notes, names, page text
in a seal's summary) carries ``@everyone``, ``@here``, role and user mentions through every
place Conductor shows it; nothing pings, but the rollback alert, which pings exactly the
operator who shipped and the operator role. simcord computes, per message, who would be
notified (``ping_user_ids``, ``ping_role_ids``, ``mention_everyone``)."""

from __future__ import annotations

from typing import Any

from bot.sample import GUILD_ID
from tests.helpers import World


def pings(world: World) -> list[tuple[str, list[int], list[int], bool]]:
    """Every message of Conductor's that would notify someone: (text, users, roles,
    everyone). (The agent's own handoff pings whom it mentions: that is the agent's doing.)"""
    out = []
    channels: dict[int, dict[int, Any]] = world.env.backend.messages
    for channel in channels.values():
        for message in channel.values():
            if message.author_id != world.bot_id:
                continue
            if message.ping_user_ids or message.ping_role_ids or message.mention_everyone:
                out.append(
                    (
                        message.content,
                        list(message.ping_user_ids),
                        list(message.ping_role_ids),
                        bool(message.mention_everyone),
                    )
                )
    return out


async def test_user_text_pings_nobody_and_the_alert_pings_exactly_whom(world: World) -> None:
    ops, olga, bob = world.operators, world.olga, world.bob
    hostile = f"<@&{ops.id}> @everyone @here <@{bob.id}>"
    carl = world.guild.add_member(world.env.create_user("carl"))
    alex = world.guild.add_member(world.env.create_user("alex"))
    hook = world.guild.create_webhook(world.handoffs, "ci-agent")
    await world.env.settle()

    # An agent's handoff with mentions in its title, kind and note, under a hostile name.
    await hook.send(
        f"handoff core → submitted\ntitle: Fix {hostile}\nkind: <@&{ops.id}>\n"
        f"branch: feat/core\n\nDone, thanks {hostile}",
        username=f"@everyone <@&{ops.id}>",
    )
    review = next(m for m in world.reviews.history() if "`core`" in m.content)
    assert hostile in review.content  # shown as written…
    await carl.react(review, "✅")
    await alex.react(review, "✅")  # …and the request is edited twice

    for command, options in (
        ("release open", {"name": "train"}),
        ("release add", {"task": "core"}),
        ("release assemble", {}),
        ("release status", {}),
        ("task show", {"slug": "core"}),
        ("task list", {}),
    ):
        await olga.slash(world.general, command, **options)
    # The seal's page text names bob too: the alert must not ping him.
    world.runner.then({"/": f"text Studio not found; the page said <@{bob.id}> @everyone"})
    await olga.slash(world.general, "release ship")

    found = pings(world)
    assert len(found) == 1, found
    [(alert, users, roles, everyone)] = found
    assert alert.startswith(f"🚨 <@{olga.id}> <@&{ops.id}> the smoke seal of `")
    assert users == [olga.id] and roles == [ops.id] and not everyone
    assert f"<@{bob.id}>" in alert  # bob is named in the page text, and not pinged
    notes = [
        m.content for t in world.notes.threads for m in t.history() if "Release notes" in m.content
    ]
    assert len(notes) == 1 and hostile in notes[0]  # the title, shown, pinging nobody
    assert (await world.bot.releases.status(GUILD_ID)).last_shipped is not None
