"""``/release assemble`` as steps: the refusals first, then (with ``[git]``) the RC branch
built and the test command run on its head, then the flip, which lands only if the members
are still the ones merged and the tests passed. Without ``[git]`` it is the flip alone."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from conductor.releases.git import GitRepository, RcBuild
from conductor.releases.sandbox import CommandRun
from conductor.releases.service import Releases
from conductor.states import ReleaseState
from conductor.views import Actor, ReleaseView

log = logging.getLogger(__name__)

AssemblyStep = Literal["merge", "test"]
#: called as each slow step starts, with the release being assembled
AssemblyProgress = Callable[[AssemblyStep, ReleaseView], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AssemblyOutcome:
    release: ReleaseView
    #: None without ``[git]``
    rc: RcBuild | None = None
    #: None without a test command
    tests: CommandRun | None = None

    @property
    def assembled(self) -> bool:
        return self.release.state is ReleaseState.ASSEMBLED


class Assembler:
    def __init__(self, releases: Releases, repo: GitRepository | None = None) -> None:
        self.releases = releases
        self.repo = repo

    @property
    def slow(self) -> bool:
        """Whether assembling runs git (the edge defers before it)."""
        return self.repo is not None

    async def assemble(
        self,
        guild_id: int,
        actor: Actor,
        *,
        release_slug: str | None = None,
        progress: AssemblyProgress | None = None,
    ) -> AssemblyOutcome:
        """Assemble the active release. Refusals and git's failures (a conflict, a missing
        branch) raise with the reason and change nothing; failed tests are recorded and the
        release stays assembling."""
        if self.repo is None:
            view = await self.releases.assemble(guild_id, actor, release_slug=release_slug)
            return AssemblyOutcome(view)
        ready = await self.releases.assembly_preflight(guild_id, release_slug=release_slug)
        members = tuple((m.slug, m.branch) for m in ready.members)
        await _report(progress, "merge", ready)
        rc = await self.repo.build_rc(ready.slug, members)
        tests = None
        if self.repo.config.test_command is not None:
            await _report(progress, "test", ready)
            tests = await self.repo.run_tests(ready.slug, rc.head)
        view = await self.releases.assemble(
            guild_id,
            actor,
            release_slug=ready.slug,
            rc=rc,
            tests=tests,
            members=tuple(slug for slug, _ in members),
        )
        return AssemblyOutcome(view, rc, tests)


async def _report(
    progress: AssemblyProgress | None, step: AssemblyStep, release: ReleaseView
) -> None:
    if progress is None:
        return
    try:
        await progress(step, release)
    except Exception:
        log.warning("the assembly progress report failed; going on", exc_info=True)
