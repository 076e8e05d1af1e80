"""The evidence of a seal: the screenshot of each failed page, kept on disk beside the seal
record and attached to the red alert within Discord's limits.

On disk: ``<root>/<guild>/<release>/<checked at>-<trigger>/<n>-<path>.png``, every part made
safe (``smoke.screenshots``); each check's record names its file relative to the root, so the
root can move with the database. A disk that refuses the files costs the files, never the
verdict or its record. A file is read back (for an alert posted late) only from under the
root, and only if it is a PNG.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from conductor.states import SealTrigger
from smoke import CheckResult, SmokeResult
from smoke.screenshots import PNG_SIGNATURE, safe_part, screenshot_name, write_screenshots

log = logging.getLogger(__name__)

#: Discord takes at most 10 files on one message
ALERT_FILES = 10
#: Discord's upload limit is 10 MiB per message for a bot in a server without boosts (25 MiB
#: in newer documentation); 8 MiB in all leaves room for the text and the multipart framing
ALERT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file for the edge to attach to a message: a name and its bytes, nothing Discord."""

    filename: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AlertEvidence:
    """The screenshots of a red seal as the alert carries them."""

    #: attached, in the order of the checks
    attached: tuple[Attachment, ...] = ()
    #: not attached (beyond Discord's limits) but on disk with the seal record
    on_disk: int = 0
    #: neither attached nor on disk (the disk refused them, or they are gone)
    lost: int = 0
    #: the seal's screenshots directory, when any file is in it
    directory: Path | None = None

    @property
    def total(self) -> int:
        return len(self.attached) + self.on_disk + self.lost


class Evidence:
    """Keeps a seal's screenshots under ``root`` and finds them again for its alert (None:
    nowhere to keep them; an alert still carries those in memory)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def seal_directory(
        self, guild_id: int, slug: str, trigger: SealTrigger, result: SmokeResult
    ) -> PurePosixPath:
        """Where a seal's screenshots go, relative to the root."""
        stamp = result.checked_at.strftime("%Y%m%dT%H%M%S%fZ")
        return PurePosixPath(
            str(guild_id), safe_part(slug, fallback="release"), f"{stamp}-{safe_part(trigger)}"
        )

    async def keep(
        self, guild_id: int, slug: str, result: SmokeResult, *, trigger: SealTrigger
    ) -> SmokeResult:
        """Write the screenshots of ``result`` beside the seal record; the result with each
        kept check naming its file. A refusal of the disk is logged; the result stands."""
        if self.root is None or not any(check.screenshot for check in result.checks):
            return result
        relative = self.seal_directory(guild_id, slug, trigger, result)
        directory = self.root.joinpath(*relative.parts)
        try:
            written, problems = await asyncio.to_thread(write_screenshots, result.checks, directory)
        except Exception:
            log.exception("the screenshots of the seal of %s were not kept", slug)
            return result
        for problem in problems:
            log.warning("a screenshot of the seal of %s was not kept: %s", slug, problem)
        if not written:
            return result
        checks = tuple(
            dataclasses.replace(check, screenshot_file=str(relative / written[i].name))
            if i in written
            else check
            for i, check in enumerate(result.checks)
        )
        log.info("kept %d screenshot(s) of the seal of %s in %s", len(written), slug, directory)
        return dataclasses.replace(result, checks=checks)

    def path(self, stored: str) -> Path | None:
        """The file a check's record names, if it lies under the root and is a PNG name."""
        relative = PurePosixPath(stored)
        if self.root is None or relative.is_absolute() or ".." in relative.parts:
            return None
        if relative.suffix != ".png" or "\0" in stored:
            return None
        candidate = self.root.joinpath(*relative.parts)
        try:
            if not candidate.resolve().is_relative_to(self.root.resolve()):
                return None  # a link out of the root
        except (OSError, RuntimeError):
            return None
        return candidate

    def _read(self, stored: str) -> bytes | None:
        file = self.path(stored)
        if file is None:
            log.warning("a seal names a screenshot outside its directory: %r", stored)
            return None
        try:
            if file.stat().st_size > ALERT_BYTES:
                return None
            data = file.read_bytes()
        except OSError as error:
            log.warning("the screenshot %s cannot be read: %s", file, error.strerror or error)
            return None
        return data if data.startswith(PNG_SIGNATURE) else None

    async def for_alert(
        self, result: SmokeResult, *, files: int = ALERT_FILES, size: int = ALERT_BYTES
    ) -> AlertEvidence:
        """The screenshots the alert carries: in the order of the checks, as many as Discord
        takes on one message (``files``, ``size`` bytes in all); the bytes in memory, else the
        file on disk (a seal read back from its record). Never raises: no evidence is better
        than no alert."""
        try:
            return await self._for_alert(result, files=files, size=size)
        except Exception:
            log.exception("the screenshots of an alert could not be gathered")
            return AlertEvidence()

    async def _for_alert(self, result: SmokeResult, *, files: int, size: int) -> AlertEvidence:
        attached: list[Attachment] = []
        on_disk = lost = 0
        used = 0
        directory: Path | None = None
        for index, check in enumerate(result.checks):
            data = check.screenshot
            if data is None and check.screenshot_file is not None:
                data = await asyncio.to_thread(self._read, check.screenshot_file)
            kept = self._kept(check)
            if kept is not None:
                directory = kept.parent
            if data is None:
                if check.screenshot_file is not None:
                    lost += 1  # named on the record, gone or unreadable now
                continue
            if len(attached) < files and used + len(data) <= size:
                attached.append(Attachment(screenshot_name(index, check.path), data))
                used += len(data)
            elif kept is not None:
                on_disk += 1
            else:
                lost += 1
        return AlertEvidence(tuple(attached), on_disk, lost, directory)

    def _kept(self, check: CheckResult) -> Path | None:
        return self.path(check.screenshot_file) if check.screenshot_file is not None else None
