"""The bot starts against the stand-in over discord.py's own HTTP and gateway."""

from __future__ import annotations

from e2e.conftest import World


def test_the_bot_logs_in_syncs_its_commands_and_posts_its_board(world: World) -> None:
    d = world.d
    names = {c["name"] for c in world.standin.commands}
    assert {"release", "seal", "task", "conductor"} <= names
    board = d.wait_for(lambda: d.messages(world.channels["deployments"]), "the board")
    assert board[0]["pinned"] or d.wait_for(
        lambda: d.messages(world.channels["deployments"])[0]["pinned"], "the board pinned"
    )
