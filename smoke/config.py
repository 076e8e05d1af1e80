"""The ``[app]`` table: where production is, how to roll back, and the read-only checks.

```toml
[app]
name = "studio"
production_url = "https://app.example.com"
health_path = "/up"
rollback_command = "git revert -m 1 {merge_sha} && bin/deploy"

[[app.smoke]]
path = "/signin"
selector = "form input[type=password]"
```
"""

from __future__ import annotations

import os
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: Debian's headless-only Chromium (package ``chromium-headless-shell``): the same engine and
#: network stack without the desktop browser's layers, as Playwright itself runs headless. A
#: seal in it takes about 0.75 s less than in the full browser on two cores (docs/PERFORMANCE.md)
HEADLESS_SHELL = "/usr/bin/chromium-headless-shell"
#: Debian's full Chromium (package ``chromium``)
FULL_CHROMIUM = "/usr/bin/chromium"


def default_chromium() -> str:
    """The Chromium a seal uses when ``app.chromium_path`` is not set: the headless shell where
    it is installed, otherwise the full browser."""
    return HEADLESS_SHELL if os.access(HEADLESS_SHELL, os.X_OK) else FULL_CHROMIUM


#: the placeholders a rollback command may use
ROLLBACK_FIELDS = frozenset({"release", "version", "merge_sha"})


class SmokeConfigError(ValueError):
    """The check configuration is unusable; the message names the field and the problem."""


def _absolute_path_of(value: str) -> str:
    value = value.strip()
    if not value.startswith("/"):
        raise ValueError(f"must start with '/' (got {value!r})")
    return value


class SmokeCheck(BaseModel):
    """One page: GET ``path`` and expect a status and, where given, a visible selector and text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    expect_status: int = Field(default=200, ge=100, le=599)
    selector: str | None = None
    expect_text: str | None = None
    #: seconds for the whole check (navigation, selector and text)
    timeout: float = Field(default=15.0, gt=0, le=300)

    _absolute_path = field_validator("path")(_absolute_path_of)

    @property
    def label(self) -> str:
        return self.path


class AppConfig(BaseModel):
    """The app the seal checks. ``production_url`` is the base every path is joined to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "app"
    production_url: str
    health_path: str = "/up"
    #: seconds for the health request
    health_timeout: float = Field(default=10.0, gt=0, le=300)
    #: rendered with {release}, {version} and {merge_sha} when a seal is red
    rollback_command: str | None = None
    #: the Chromium the pages load in; :func:`default_chromium` when not set
    chromium_path: str = Field(default_factory=default_chromium)
    #: other hosts a page or the health URL may redirect to (``sso.example.com`` or
    #: ``sso.example.com:8443``); a redirect anywhere else fails the check, naming the host
    allowed_hosts: tuple[str, ...] = ()
    smoke: tuple[SmokeCheck, ...] = ()

    @field_validator("production_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"must be an http(s) URL such as https://app.example.com (got {value!r})"
            )
        return value

    _health_path = field_validator("health_path")(_absolute_path_of)

    @field_validator("rollback_command")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as error:
            raise ValueError(f"is not a valid template: {error}") from None
        unknown = sorted(n for n in names if n not in ROLLBACK_FIELDS)
        if unknown:
            allowed = ", ".join("{" + f + "}" for f in sorted(ROLLBACK_FIELDS))
            raise ValueError(f"uses unknown placeholder {{{unknown[0]}}}; allowed: {allowed}")
        return value.strip()

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        hosts = tuple(h.strip().lower() for h in value)
        for host in hosts:
            if not host or "/" in host or "@" in host or " " in host:
                raise ValueError(f"a host name, optionally with :port (got {host!r})")
        return hosts

    def url(self, path: str) -> str:
        return self.production_url + path

    def offsite(self, url: str) -> str | None:
        """The host ``url`` points at when it is neither production's nor an allowed one (a
        redirect there is not followed), else None."""
        target = urlsplit(url)
        if target.scheme not in ("http", "https"):
            return target.scheme or url
        home = urlsplit(self.production_url)
        netloc = (target.hostname or "") + (f":{target.port}" if target.port else "")
        if target.netloc.rsplit("@", 1)[-1].lower() == home.netloc.rsplit("@", 1)[-1].lower():
            return None
        if (
            target.hostname or ""
        ).lower() in self.allowed_hosts or netloc.lower() in self.allowed_hosts:
            return None
        return netloc or url

    @property
    def health_url(self) -> str:
        return self.url(self.health_path)

    def at(self, production_url: str, *, named: str = "app.production_url") -> AppConfig:
        """The same checks against another base URL (``conductor smoke URL``); raises
        :class:`SmokeConfigError` when the URL is not an http(s) URL, naming it as ``named``
        (where the URL came from: ``URL``, the command's argument, is not the file's key)."""
        try:
            return AppConfig.model_validate({**self.model_dump(), "production_url": production_url})
        except ValidationError as error:
            raise SmokeConfigError(_describe(error, {"production_url": named})) from None

    def rollback(self, *, release: str, version: int | None, merge_sha: str | None) -> str | None:
        """The rollback command for one release, or None when none is configured. A value the
        release doesn't have yet (no merge SHA without git) stays as a visible ``<merge_sha>``."""
        if self.rollback_command is None:
            return None
        values = {
            "release": release,
            "version": f"v{version}" if version is not None else "<version>",
            "merge_sha": merge_sha or "<merge_sha>",
        }
        return self.rollback_command.format_map(values)


def _describe(error: ValidationError, names: Mapping[str, str] | None = None) -> str:
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()))
        message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
        named = (names or {}).get(where, f"app.{where}")
        problems.append(f"{named}: {message}" if where else message)
    return "; ".join(problems)


def parse_app_config(table: Mapping[str, Any] | None) -> AppConfig:
    """Validate an ``[app]`` table; raise :class:`SmokeConfigError` naming what is wrong."""
    if table is None:
        raise SmokeConfigError(
            "no [app] table: set app.production_url and the [[app.smoke]] checks"
        )
    if not isinstance(table, Mapping):
        raise SmokeConfigError(f"[app] must be a table, not {type(table).__name__}")
    try:
        return AppConfig.model_validate(dict(table))
    except ValidationError as error:
        raise SmokeConfigError(_describe(error)) from None


def load_app_config(path: str | Path) -> AppConfig:
    """The ``[app]`` table of a TOML file (``conductor.toml``)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SmokeConfigError(f"{file}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise SmokeConfigError(f"{file}: not valid TOML: {error}") from None
    except OSError as error:
        raise SmokeConfigError(f"{file}: cannot be read: {error.strerror or error}") from None
    return parse_app_config(data.get("app"))
