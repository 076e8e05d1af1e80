"""Several processes: two real bot processes on the same two shards of one PostgreSQL
database, as in a rolling restart, against a stand-in Discord that serves two shards (one
IDENTIFY per 5 s, the guild's events on its shard's session) and records a second live
session on a shard, IDENTIFYs closer than 5 s and a second answer to an interaction.

The first process holds both shards; the second waits while both run and answers nothing;
the first is SIGKILLed and the second takes the shards once their leases (3 s here) ran out;
a third started beside it takes them at once when the second stops cleanly (it lets go)."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.driver import BotProcess, Driver
from e2e.pg import execute, rows
from e2e.standin import IDENTIFY_WINDOW_S, StandIn
from tests.postgres import Cluster

#: a guild on shard 1 of 2: (GUILD_ID >> 22) % 2 == 1
GUILD_ID = (7 << 22) + 4242
LEASE_S = 3


@pytest.fixture
def standin() -> Iterator[StandIn]:
    token = "e2e." + secrets.token_urlsafe(24)
    server = StandIn(token)
    server.shard_count = 2
    server.max_concurrency = 1
    server.start()
    try:
        server.call(lambda: server.create_guild(GUILD_ID, "Sharded"))
        yield server
    finally:
        server.stop()


def _sharded_env(tmp_path: Path, standin: StandIn, url: str) -> dict[str, str]:
    """A bot process's environment: the stand-in, ``url``, two shards, a short lease (and a
    config file naming the guild, written in ``tmp_path``)."""
    config = tmp_path / "conductor.toml"
    config.write_text(f'guild_id = {GUILD_ID}\noperator_role = "Operators"\n')
    return {
        "CONDUCTOR_DISCORD_TOKEN": standin.token,
        "CONDUCTOR_DISCORD_API_URL": standin.url,
        "CONDUCTOR_DATABASE_URL": url,
        "CONDUCTOR_CONFIG": str(config),
        "CONDUCTOR_WEB_ENABLED": "false",
        "CONDUCTOR_SHARD_COUNT": "2",
        "CONDUCTOR_SHARD_LEASE_SECONDS": str(LEASE_S),
    }


def _releases(url: str) -> list[tuple[str, str]]:
    return [
        (slug, state) for slug, state in rows(url, "SELECT slug, state FROM releases ORDER BY id")
    ]


def _both_up_then_the_first_killed(
    d: Driver, first: BotProcess, second: BotProcess, olga: int, general: int
) -> None:
    standin = d.s
    first.start()
    first.wait_ready()
    assert sorted(s for _, s in standin.identifies) == [0, 1]

    # A rolling restart: the second process starts on the same shards and waits.
    second.start()
    second.wait_log("waiting for shard(s) [0, 1]")
    opened = d.slash(olga, general, "release open", name="rolling")
    assert "rolling" in d.said(opened)
    again = d.slash(olga, general, "release open", name="twice")
    assert "rolling" in d.said(again)  # refused: one active release
    # Both up for a few renewals: the second never connects, nothing is answered twice.
    watch_until = time.monotonic() + 2 * LEASE_S
    while time.monotonic() < watch_until:
        assert "taken" not in second.output()
        time.sleep(0.1)
    assert len(standin.identifies) == 2

    # The first dies without a word: the second takes both shards once the leases ran out
    # (nothing was let go), one IDENTIFY per 5 s.
    killed = time.monotonic()
    first.kill()
    second.wait_ready()
    assert time.monotonic() - killed >= 1.0  # not before the lease could run out
    assert "shard 0 taken (token 2)" in second.output()
    assert "shard 1 taken (token 2)" in second.output()
    status = d.slash(olga, general, "release status")
    assert "rolling" in d.said(status)


def _a_clean_stop_hands_over_at_once(
    d: Driver, second: BotProcess, third: BotProcess, olga: int, general: int
) -> None:
    third.start()
    third.wait_log("waiting for shard(s) [0, 1]")
    second.stop()
    assert "let go" in second.output(), second.output()[-2000:]
    third.wait_ready()
    assert "shard 0 taken (token 3)" in third.output()
    status = d.slash(olga, general, "release status")
    assert "rolling" in d.said(status)


def test_a_rolling_restart_on_the_same_shards_does_nothing_twice(
    cluster: Cluster, standin: StandIn, tmp_path: Path
) -> None:
    d = Driver(standin)
    assert standin.guild_shard() == 1
    general = d.channel("general")
    operators = d.role("Operators")
    olga = d.user("olga", roles=(operators,))
    with cluster.database(schema=True) as url:
        env = _sharded_env(tmp_path, standin, url)
        bots = []
        for name in ("first", "second", "third"):
            (tmp_path / name).mkdir()
            bots.append(BotProcess(tmp_path / name, env))
        try:
            _both_up_then_the_first_killed(d, bots[0], bots[1], olga, general)
            _a_clean_stop_hands_over_at_once(d, bots[1], bots[2], olga, general)
        finally:
            for bot in bots:
                bot.kill()
        [(slug, state)] = _releases(url)  # one release, opened once
        assert slug.endswith("-rolling") and state == "assembling"
    times = sorted(at for at, _ in standin.identifies)
    assert len(times) == 6  # two shards, three processes, each connected once
    assert all(b - a >= IDENTIFY_WINDOW_S for a, b in itertools.pairwise(times))
    assert d.failures() == []  # no second answer, no second live session on a shard
    for bot in bots:
        assert bot.errors() == [], bot.output()[-3000:]


def test_a_shard_whose_lease_was_taken_is_disconnected_then_taken_back_when_free(
    cluster: Cluster, standin: StandIn, tmp_path: Path
) -> None:
    """The fence: another owner writes itself into shard 1's lease (its token moved); the
    process disconnects shard 1 at its next renewal, keeps shard 0, and connects shard 1
    again once that lease runs out."""
    d = Driver(standin)
    general = d.channel("general")
    operators = d.role("Operators")
    olga = d.user("olga", roles=(operators,))
    with cluster.database(schema=True) as url:
        bot = BotProcess(tmp_path, _sharded_env(tmp_path, standin, url))
        bot.start()
        try:
            bot.wait_ready()
            execute(
                url,
                "UPDATE shard_leases SET owner = 'intruder', token = token + 1,"
                " expires_at = expires_at + interval '1 hour' WHERE shard_id = 1",
            )
            bot.wait_log("shard 1: lease taken by another process; disconnected")
            d.wait_for(
                lambda: standin.call(lambda: standin.shard_sessions[1].ws is None),
                "shard 1's session closed",
            )
            assert standin.call(lambda: standin.shard_sessions[0].ws is not None)
            execute(url, "UPDATE shard_leases SET expires_at = '2000-01-01' WHERE shard_id = 1")
            bot.wait_log("shard 1 taken (token 3)")
            d.wait_for(lambda: len(standin.identifies) == 3, "shard 1 identified again")
            status = d.slash(olga, general, "release status")
            assert d.said(status)
        finally:
            bot.stop()
        assert bot.errors() == [], bot.output()[-3000:]
    assert d.failures() == []
