"""The deploy and the health gate of a ship: the operator's deploy command, run with the release
in its environment and under a timeout, and the app's health URL polled until it answers 200.

The ``[deploy]`` table::

    [deploy]
    command = "bin/deploy"      # run through the shell in a checkout of the deployed commit
    timeout = 600               # seconds; past it the command is killed with its children
    network = "host"            # the host's network; "none" (the default): its own loopback
    env = ["AWS_PROFILE"]       # the bot's environment variables it is given, by name
    read = ["/etc/deploy"]      # paths it may read (credentials), beside the system
    write = []                  # paths it may write, beside its own checkout
    health_timeout = 120        # seconds the health gate waits for a 200
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

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conductor.releases.sandbox import Grant, Limits, Network, SandboxMode, absolute_paths
from conductor.text import clip, one_line

#: the longest wait between two health checks
MAX_HEALTH_INTERVAL = 5.0
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
    #: the last answer: ``200``, ``status 503``, ``cannot connect: …``
    last: str

    @property
    def summary(self) -> str:
        tries = f"{self.attempts} check{'s' if self.attempts != 1 else ''}"
        if self.healthy:
            return f"healthy after {tries} ({self.duration_ms / 1000:.1f} s)"
        return f"not healthy after {tries} in {self.duration_ms / 1000:.1f} s: {self.last}"


async def health_gate(
    url: str, *, limit_s: float, interval: float = 0.5, client: httpx.AsyncClient | None = None
) -> HealthResult:
    """GET ``url`` until it answers 200 (redirects are not followed), waiting ``interval``
    between checks, doubling up to 5 s, for at most ``limit_s`` seconds."""
    started = time.perf_counter()
    deadline = started + limit_s
    attempts, last, wait = 0, "not checked", interval
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            attempts += 1
            try:
                answer = await http.get(url, timeout=min(10.0, max(left, 0.1)))
            except httpx.HTTPError as error:
                last = clip(f"cannot connect: {one_line(error)}", 200)
            else:
                if answer.status_code == 200:
                    return HealthResult(True, attempts, _ms(started), "200")
                last = f"status {answer.status_code}"
            pause = min(wait, deadline - time.perf_counter())
            if pause <= 0:
                break
            await asyncio.sleep(pause)
            wait = min(wait * 2, MAX_HEALTH_INTERVAL)
    finally:
        if own:
            await http.aclose()
    return HealthResult(False, attempts, _ms(started), last)


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
