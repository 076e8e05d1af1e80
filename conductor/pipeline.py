"""``/release ship`` as steps: the state flip, then the seal.

The flip is the ship: its refusals raise as usual. After it, nothing can undo or block the
ship: the seal's failures of any kind end up as an ``error`` seal in the outcome, and the notes
(posted by the Discord layer from the outcome) always follow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conductor.seals import SHIP, Sealer, SealOutcome
from conductor.service import ReleaseService
from conductor.views import Actor, ReleaseView
from smoke import SmokeResult

log = logging.getLogger(__name__)

#: called as each step starts: ("seal", the shipped release)
Progress = Callable[[str, ReleaseView], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ShipOutcome:
    release: ReleaseView
    #: None when no ``[app]`` is configured (nothing to seal against)
    seal: SealOutcome | None

    @property
    def shipped(self) -> ReleaseView:
        """The release as it stands now, with its seal when one was recorded."""
        return self.seal.release if self.seal is not None else self.release


class ShipPipeline:
    def __init__(self, service: ReleaseService, sealer: Sealer) -> None:
        self.service = service
        self.sealer = sealer

    async def ship(
        self,
        guild_id: int,
        actor: Actor,
        *,
        release_slug: str | None = None,
        progress: Progress | None = None,
    ) -> ShipOutcome:
        view = await self.service.ship(guild_id, actor, release_slug=release_slug)
        if not self.sealer.configured:
            log.info("release %s shipped without a seal: no [app] is configured", view.slug)
            return ShipOutcome(view, None)
        if progress is not None:
            try:
                await progress("seal", view)
            except Exception:
                log.warning("the ship progress report failed; sealing anyway", exc_info=True)
        return ShipOutcome(view, await self.seal_shipped(guild_id, view, actor))

    async def seal_shipped(
        self, guild_id: int, view: ReleaseView, actor: Actor | None
    ) -> SealOutcome:
        """The seal after a ship; whatever fails, an outcome comes back."""
        try:
            return await self.sealer.seal(guild_id, view, trigger=SHIP, actor=actor)
        except Exception as error:
            log.exception("the seal of %s failed outside the runner", view.slug)
            result = SmokeResult.failure(f"the seal step failed: {error}"[:300])
            return SealOutcome(result, view, None, recorded=False)

    async def owed_seal(self, guild_id: int, release: ReleaseView) -> SealOutcome | None:
        """The seal for notes posted late: the stored one, or (the process stopped between
        the flip and the seal) a seal run now; None when there is nothing to seal against."""
        if release.seal_status is not None:
            return self.sealer.stored(release)
        if not self.sealer.configured:
            return None
        return await self.seal_shipped(guild_id, release, None)
