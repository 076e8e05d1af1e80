"""The plain result of one smoke run: what the domain stores and every surface renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: the reason of a page check that was not run because nothing answered the health check
NOT_RUN_UNREACHABLE = "not run: production unreachable"
_NOT_RUN = "not run: "


class Verdict(StrEnum):
    #: every check passed
    GREEN = "green"
    #: at least one check failed; each failure says why
    RED = "red"
    #: the runner itself could not run (no browser, bad config, crash); ``error`` says why
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class BlockedRequest:
    """A request a page tried to make that was not GET or HEAD: aborted before it left."""

    method: str
    url: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    #: the path checked (the health check is the app's health path)
    path: str
    ok: bool
    #: "health" (httpx) or "page" (Chromium)
    kind: str = "page"
    #: the HTTP status seen, when a response came back
    status: int | None = None
    #: why it failed, short and specific: "status 503", "selector form input not found", …
    reason: str | None = None
    duration_ms: int = 0
    blocked: tuple[BlockedRequest, ...] = ()
    #: the failed page as it looked (a PNG of the viewport): only a failed page check that got
    #: a page has one. Kept out of equality, repr and the stored form (the bytes go to disk).
    screenshot: bytes | None = field(default=None, compare=False, repr=False)
    #: where that PNG was kept on disk, as its keeper says (the seal: relative to its
    #: screenshots directory)
    screenshot_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["screenshot"]
        if self.screenshot_file is None:
            del data["screenshot_file"]  # the stored form of a check without one is unchanged
        data["blocked"] = [asdict(b) for b in self.blocked]
        return data

    @property
    def not_run(self) -> bool:
        """Failed without being tried (production did not answer the health check)."""
        return not self.ok and (self.reason or "").startswith(_NOT_RUN)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        blocked = tuple(BlockedRequest(**b) for b in data.get("blocked", ()))
        known = {
            k: data[k]
            for k in ("path", "ok", "kind", "status", "reason", "duration_ms", "screenshot_file")
            if k in data
        }
        return cls(**known, blocked=blocked)


@dataclass(frozen=True, slots=True)
class SmokeResult:
    verdict: Verdict
    #: one line: "6/6 checks passed", "2 of 6 failed: /signin (…), /up (status 503)", or the error
    summary: str
    duration_ms: int
    checks: tuple[CheckResult, ...] = ()
    #: why the runner could not run (verdict ``error`` only)
    error: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def blocked(self) -> tuple[BlockedRequest, ...]:
        return tuple(b for c in self.checks for b in c.blocked)

    @classmethod
    def from_checks(
        cls,
        checks: tuple[CheckResult, ...],
        duration_ms: int,
        *,
        checked_at: datetime | None = None,
    ) -> SmokeResult:
        failed = [c for c in checks if not c.ok]
        if not checks:
            return cls.failure("no checks are configured", duration_ms)
        not_run = [c for c in failed if c.not_run]
        tried = [c for c in failed if not c.not_run]
        reasons = ", ".join(f"{c.path} ({c.reason or 'failed'})" for c in tried)
        if not_run:
            # "production unreachable: /up (connection refused); 5 page checks not run"
            why = (not_run[0].reason or "").removeprefix(_NOT_RUN) or "not run"
            plural = "s" if len(not_run) != 1 else ""
            summary = f"{why}: {reasons or 'the health check failed'}; "
            summary += f"{len(not_run)} page check{plural} not run"
            verdict = Verdict.RED
        elif failed:
            summary = f"{len(failed)} of {len(checks)} failed: {reasons}"
            verdict = Verdict.RED
        else:
            summary = f"{len(checks)}/{len(checks)} checks passed"
            verdict = Verdict.GREEN
        blocked = sum(len(c.blocked) for c in checks)
        if blocked:
            summary += f"; {blocked} write{'s' if blocked != 1 else ''} blocked"
        return cls(
            verdict=verdict,
            summary=summary,
            duration_ms=duration_ms,
            checks=checks,
            checked_at=checked_at or datetime.now(UTC),
        )

    @classmethod
    def failure(cls, reason: str, duration_ms: int = 0) -> SmokeResult:
        """The runner could not run: verdict ``error`` with the reason."""
        return cls(
            verdict=Verdict.ERROR,
            summary=f"the smoke runner could not run: {reason}",
            duration_ms=duration_ms,
            error=reason,
        )
