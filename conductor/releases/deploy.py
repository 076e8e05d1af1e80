"""The deploy and the health gate of a ship: the operator's deploy command, run with the release
in its environment and under a timeout, and the app's health URL polled until it answers 200.

The gate has a real deadline: it ends by ``health_timeout`` whatever production does (a header
trickled a byte at a time, a body that never ends), reads at most 64 KiB of each answer, and
follows a redirect only to production's host or one in ``app.allowed_hosts``; one anywhere else
fails the gate at once, naming the host.

The ``[deploy]`` table::

    [deploy]
    command = "bin/deploy"      # run through the shell in a checkout of the deployed commit
    timeout = 600               # seconds; past it the command is killed with its children
    network = "host"            # the host's network; "none" (the default): its own loopback
    env = ["AWS_PROFILE"]       # the bot's environment variables it is given, by name
    read = ["/etc/deploy"]      # paths it may read (credentials), beside the system
    write = []                  # paths it may write, beside its own checkout
    health_timeout = 120        # seconds the whole health gate may take
    health_interval = 0.5       # the first wait between two checks; it doubles up to 5 s
    log_dir = "deploy-logs"     # where each deploy's whole output is kept
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conductor.releases.sandbox import Grant, Limits, Network, SandboxMode, absolute_paths
from conductor.text import clip, one_line
from smoke.health import Offsite, ask_health

#: the longest wait between two health checks
MAX_HEALTH_INTERVAL = 5.0
#: the longest one health check may take (the gate's own end comes first when it is nearer)
MAX_HEALTH_CHECK = 10.0
USER_AGENT = "Conductor/1 (health gate)"


class DeployConfigError(ValueError):
    """The ``[deploy]`` table is malformed; the message names the field."""


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    timeout: float = Field(default=600.0, gt=0)
    health_timeout: float = Field(default=120.0, gt=0)
    health_interval: float = Field(default=0.5, gt=0)
    log_dir: str = "deploy-logs"
    #: "off": not sandboxed (else ``[git]``'s choice, bubblewrap by default)
    sandbox: SandboxMode | None = None
    network: Network = "none"
    env: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    #: the deploy's CPU, memory, processes, files and output
    limits: Limits = Limits()

    @property
    def grant(self) -> Grant:
        return Grant(env=self.env, read=self.read, write=self.write, network=self.network)

    @field_validator("network", mode="before")
    @classmethod
    def _network(cls, value: object) -> object:
        return {False: "none", True: "host"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("env")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or "=" in name or name.upper().startswith("CONDUCTOR_"):
                raise ValueError(
                    f"{name!r}: a variable's name, and never one of Conductor's own (CONDUCTOR_*)"
                )
        return value

    @field_validator("read", "write")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return absolute_paths(value)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        return value if value is None or value.strip() else None


def parse_deploy_config(table: Mapping[str, Any] | None) -> DeployConfig:
    try:
        return DeployConfig.model_validate(table or {})
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem.get("loc", ()))
        raise DeployConfigError(f"deploy.{field}: {problem.get('msg', 'invalid')}") from None


@dataclass(frozen=True, slots=True)
class HealthResult:
    healthy: bool
    attempts: int
    duration_ms: int
    #: the last answer: ``200``, ``status 503``, ``cannot connect: …``, ``no complete answer
    #: within the gate's 3.0 s``, ``redirected to another host: …``
    last: str

    @property
    def summary(self) -> str:
        tries = f"{self.attempts} check{'s' if self.attempts != 1 else ''}"
        if self.healthy:
            return f"healthy after {tries} ({self.duration_ms / 1000:.1f} s)"
        return f"not healthy after {tries} in {self.duration_ms / 1000:.1f} s: {self.last}"


async def health_gate(
    url: str,
    *,
    limit_s: float,
    interval: float = 0.5,
    client: httpx.AsyncClient | None = None,
    offsite: Offsite | None = None,
) -> HealthResult:
    """GET ``url`` until it answers 200, waiting ``interval`` between checks, doubling up to
    5 s. The whole gate (every check: connect, headers, body) ends by ``limit_s`` whatever
    production does, and each check by :data:`MAX_HEALTH_CHECK` or what is left of the gate,
    if sooner. Each reads at most 64 KiB of body (:func:`smoke.health.ask_health`: a 200 with
    a longer body is not healthy) and follows redirects only where ``offsite`` finds nothing
    wrong (:meth:`smoke.config.AppConfig.offsite`; by default, ``url``'s own host); a
    redirect anywhere else ends the gate at once, naming the host."""
    own = client is None
    # made before the clock starts: its TLS context (the CA bundle read) is the gate's own
    # cost, not production's, and took a busy machine past a short limit before any check
    http = client or httpx.AsyncClient(
        follow_redirects=False, timeout=MAX_HEALTH_CHECK, headers={"User-Agent": USER_AGENT}
    )
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    where = offsite or _other_than(url)
    attempts, last, wait = 0, "not checked", interval
    checking: float | None = None  # the bound of the check under way
    last_check = False  # whether that bound is the gate's own end
    try:
        async with asyncio.timeout_at(deadline):
            while (left := deadline - loop.time()) > 0:
                attempts += 1
                checking, last_check = min(MAX_HEALTH_CHECK, left), left <= MAX_HEALTH_CHECK
                try:
                    async with asyncio.timeout(checking):
                        answer = await ask_health(http, url, offsite=where)
                except (TimeoutError, httpx.TimeoutException):
                    last = _no_answer(checking, limit_s if last_check else None)
                except (httpx.HTTPError, httpx.InvalidURL) as error:
                    last = _failure(error)
                else:
                    if answer.healthy:
                        return HealthResult(True, attempts, _ms(started), "200")
                    last = answer.reason or ""
                    if answer.offsite is not None:  # no point asking again
                        break
                checking = None
                await asyncio.sleep(min(wait, max(deadline - loop.time(), 0)))
                wait = min(wait * 2, MAX_HEALTH_INTERVAL)
    except TimeoutError:  # the gate's own deadline, in the middle of a check or a wait
        if checking is not None:
            last = _no_answer(checking, limit_s if last_check else None)
    finally:
        if own:
            await http.aclose()
    return HealthResult(False, attempts, _ms(started), last)


def _no_answer(seconds: float, gate: float | None) -> str:
    """A check that did not end: cut by its own bound, or (``gate``) by the gate's end, which
    is named rather than the moment the check began within it."""
    if gate is not None:
        return f"no complete answer within the gate's {gate:.1f} s"
    return f"no complete answer in {seconds:.1f} s"


def _failure(error: Exception) -> str:
    what = "cannot connect" if isinstance(error, httpx.ConnectError) else "request failed"
    return clip(f"{what}: {one_line(error)}", 200)


def _other_than(url: str) -> Offsite:
    """The default ``offsite`` of a gate: any host but ``url``'s own."""
    home = urlsplit(url).netloc.rsplit("@", 1)[-1].lower()

    def offsite(target: str) -> str | None:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https"):
            return parts.scheme or target
        there = parts.netloc.rsplit("@", 1)[-1].lower()
        return None if there == home else there or target

    return offsite


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def deploy_environment(release: str, version: int, sha: str | None) -> dict[str, str]:
    """What the deploy command finds in its environment."""
    return {
        "CONDUCTOR_RELEASE": release,
        "CONDUCTOR_VERSION": f"v{version}",
        "CONDUCTOR_SHA": sha or "",
    }


def rollback_environment(
    rolled_back: str, previous: str | None, version: int | None, sha: str | None
) -> dict[str, str]:
    """What the deploy command finds in its environment in a rollback: the release production
    goes back to (``CONDUCTOR_RELEASE``, ``CONDUCTOR_VERSION``: empty when none shipped before
    it), what to deploy (``CONDUCTOR_SHA``: main after the revert), and the release rolled
    back (``CONDUCTOR_ROLLBACK_OF``)."""
    return {
        "CONDUCTOR_RELEASE": previous or "",
        "CONDUCTOR_VERSION": f"v{version}" if version is not None else "",
        "CONDUCTOR_SHA": sha or "",
        "CONDUCTOR_ROLLBACK_OF": rolled_back,
    }


def log_path(config: DeployConfig, release: str, version: int, *, what: str = "deploy") -> Path:
    return Path(config.log_dir) / f"{release}-v{version}-{what}.log"
