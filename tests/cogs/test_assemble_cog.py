"""``/release assemble`` with ``[git]`` through simcord: the deferred answer is edited in place
from "merging" to the RC and its tests; a conflict and failing tests are shown to the team;
``/release status`` shows the RC and the failed tests' last lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import ConductorBot
from bot.sample import GUILD_ID
from conductor.states import ReleaseState
from tests.helpers import Origin, World, make_bot, reviewed

TESTS = "for f in *.txt; do grep -q BROKEN $f && echo FAIL $f && exit 1; done; echo 3 passed"


@pytest.fixture
async def simcord_bot(tmp_path: Path, clone: Path) -> AsyncIterator[ConductorBot]:
    async with make_bot(tmp_path, clone=clone, tests=TESTS) as bot:
        yield bot


async def test_assemble_builds_the_rc_and_edits_its_answer_in_place(
    world: World, origin: Origin
) -> None:
    origin.commit("feat/core", {"core.txt": "core\n"})
    origin.commit("feat/ui", {"ui.txt": "ui\n"})
    await reviewed(world.bot, "core")
    await reviewed(world.bot, "ui", depends_on="core")
    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="core")
    await world.olga.slash(world.general, "release add", task="ui")

    result = await world.olga.slash(world.general, "release assemble")

    assert result.followups == []  # the deferred answer itself was edited, nothing else sent
    text = result.response.content
    release = (await world.bot.releases.status(GUILD_ID)).active
    assert release is not None and release.state is ReleaseState.ASSEMBLED
    assert release.rc_head is not None
    assert text.splitlines()[:3] == [
        f"📦 `{release.slug}` is assembled.",
        f"🌿 RC `release/{release.slug}` at `{release.rc_head[:10]}` (2 merges)",
        text.splitlines()[2],
    ]
    assert text.splitlines()[2].startswith("🧪 Tests passed on the RC head in ")
    assert "• `core` — Core" in text and text.index("`core`") < text.index("`ui`")


async def test_a_conflict_is_shown_to_the_team_and_nothing_changes(
    world: World, origin: Origin
) -> None:
    origin.commit("feat/one", {"app.txt": "one\n"})
    origin.commit("feat/two", {"app.txt": "two\n"})
    await reviewed(world.bot, "one")
    await reviewed(world.bot, "two")
    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="one")
    await world.olga.slash(world.general, "release add", task="two")

    result = await world.olga.slash(world.general, "release assemble")

    text = result.response.content
    assert not result.response.ephemeral
    assert text.startswith("❌ `") and text.endswith(
        "was not assembled: Task `two` (`feat/two`) conflicts with task `one` merged before it "
        "in `app.txt`. Nothing was assembled; the release stays assembling. Rebase the branch, "
        "or `/release remove` the task."
    )
    active = (await world.bot.releases.status(GUILD_ID)).active
    assert active is not None and active.state is ReleaseState.ASSEMBLING


async def test_failing_tests_show_their_last_lines_here_and_in_status(
    world: World, origin: Origin
) -> None:
    origin.commit("feat/bad", {"bad.txt": "BROKEN\n"})
    await reviewed(world.bot, "bad")
    await world.olga.slash(world.general, "release open", name="train")
    await world.olga.slash(world.general, "release add", task="bad")

    result = await world.olga.slash(world.general, "release assemble")

    text = result.response.content
    assert "is still assembling: the tests failed." in text
    assert "🧪 Tests failed on the RC head after " in text
    assert "```\nFAIL bad.txt\n```" in text
    embed = (await world.bob.slash(world.general, "release status")).response.embeds[0]
    [rc] = [f for f in embed.fields if f.name == "RC"]
    assert "🧪 Tests failed on the RC head" in rc.value and "FAIL bad.txt" in rc.value
