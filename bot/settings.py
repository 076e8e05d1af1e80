"""Configuration: ``CONDUCTOR_*`` environment variables over an optional TOML file."""

from __future__ import annotations

import os
import tomllib
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.config_file import readable_config
from bot.endpoint import is_loopback_host, loopback_api_url

#: the database drivers the bot runs on (it is async throughout)
ASYNC_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _default_database_url() -> str:
    # store.db brings SQLAlchemy (~0.4 s): only a command that builds Settings pays for it
    # (``conductor smoke`` builds none: it reads the config file's path from bot.config_file).
    from store.db import DEFAULT_DATABASE_URL  # noqa: PLC0415

    return DEFAULT_DATABASE_URL


class WebSettings(BaseModel):
    """The ``[web]`` table: the read-only ``/deployments`` board the bot serves
    (``CONDUCTOR_WEB_ENABLED``, ``CONDUCTOR_WEB_HOST``, ``CONDUCTOR_WEB_PORT`` over it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: loopback by default: the board shows the train to whoever can reach it
    host: str = "127.0.0.1"
    #: 0: a free port, chosen at start (logged)
    port: int = Field(default=8080, ge=0, le=65535)
    #: Login with Discord, required when ``host`` is not loopback (``bot.web.auth``): the
    #: Discord application's OAuth2 client id and secret, and the board's address as its
    #: users reach it (``https://board.example.com``; the redirect is ``<public_url>/oauth/
    #: callback``, registered in the application's OAuth2 settings)
    client_id: int | None = Field(default=None, gt=0)
    client_secret: SecretStr | None = None
    public_url: str | None = None
    #: a role id: only its holders are let in (None: every member of the guild)
    role: int | None = Field(default=None, gt=0)
    #: the key the session cookies are signed with (None: a random one per start, so a
    #: restart logs everyone out); set it when two processes serve the board
    session_secret: SecretStr | None = None
    #: a commit's page, ``{sha}`` standing for its SHA (the release page links merge SHAs)
    commit_url: str | None = None

    @field_validator("commit_url")
    @classmethod
    def _a_commit_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("https://", "http://")) or "{sha}" not in value:
            raise ValueError(
                "expected an http(s) URL with {sha} where the commit goes, e.g. "
                "https://github.com/org/repo/commit/{sha}"
            )
        return value

    @field_validator("host")
    @classmethod
    def _a_host(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() or c in "/?#@" for c in value):
            raise ValueError("expected a host name or an IP address, e.g. 127.0.0.1")
        return value

    @field_validator("public_url")
    @classmethod
    def _a_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        scheme, _, rest = value.partition("://")
        host = rest.split("/", 1)[0]
        if scheme.lower() not in ("http", "https") or not host or any(c in rest for c in "?#@"):
            raise ValueError(
                "expected the board's address as its users reach it, "
                "e.g. https://board.example.com (no query, no fragment)"
            )
        return value

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < SESSION_SECRET_MIN:
            raise ValueError(f"too short: at least {SESSION_SECRET_MIN} characters")
        return value

    @property
    def needs_login(self) -> bool:
        """Served anywhere but loopback: only the guild's members, logged in with Discord."""
        return self.enabled and not is_loopback_host(self.host)


#: the shortest ``[web] session_secret`` taken (e.g. ``openssl rand -hex 32`` gives 64)
SESSION_SECRET_MIN = 32

#: ``CONDUCTOR_WEB_<NAME>`` for each setting of the ``[web]`` table
WEB_ENVIRONMENT = {f"CONDUCTOR_WEB_{name.upper()}": name for name in WebSettings.model_fields}


class _WebEnvironment(PydanticBaseSettingsSource):
    """``CONDUCTOR_WEB_ENABLED``, ``_HOST``, ``_PORT``: the ``[web]`` table's settings from
    the environment, each over the file's (pydantic-settings merges the tables)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the environment itself

    def __call__(self) -> dict[str, Any]:
        table = {
            name: os.environ[env] for env, name in WEB_ENVIRONMENT.items() if env in os.environ
        }
        return {"web": table} if table else {}


class Settings(BaseSettings):
    """Everything Conductor reads at start. The token is a ``SecretStr``: it prints as
    ``**********`` and is never logged."""

    model_config = SettingsConfigDict(
        env_prefix="CONDUCTOR_", extra="ignore", validate_default=True, frozen=True
    )
    #: read ``CONDUCTOR_*`` and the TOML file; False: the arguments alone (``bot.sample``)
    reads_outside: ClassVar[bool] = True

    discord_token: SecretStr | None = None
    database_url: str = Field(default_factory=_default_database_url)
    guild_id: int | None = Field(default=None, gt=0)
    #: channel names or ids
    handoff_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    reviews_channel: str | None = None
    notes_channel: str | None = None
    deployments_channel: str | None = None
    #: role names or ids
    operator_role: str | None = None
    reviewer_role: str | None = None
    #: who may place a sealed bid with ``/task size`` (``CONDUCTOR_PM_ROLE``,
    #: ``CONDUCTOR_PO_ROLE``; names or ids): the product manager, the product owner
    pm_role: str | None = None
    po_role: str | None = None
    required_approvals: int = Field(default=2, ge=1, le=20)
    #: the ``[app]`` table (production URL, rollback command, ``[[app.smoke]]`` checks), kept
    #: raw here and validated by :func:`smoke.parse_app_config` at start and at each seal
    app: dict[str, Any] | None = None
    #: the ``[git]`` table (the clone, main, the remote, the test command), kept raw here and
    #: validated by :func:`conductor.releases.git.parse_git_config` at start
    git: dict[str, Any] | None = None
    #: the ``[deploy]`` table (the deploy command, its timeout, the health gate's)
    deploy: dict[str, Any] | None = None
    #: the ``[reminders]`` table (the intervals), kept raw here and validated by
    #: :func:`conductor.reminders.parse_reminders_config` at start
    reminders: dict[str, Any] | None = None
    #: the ``[sizing]`` table (the basis and the bounds of the actual size), kept raw here
    #: and validated by :func:`conductor.sizing.parse_sizing_config` at start
    sizing: dict[str, Any] | None = None
    #: where the screenshots of failed seal checks are kept (default: ``screenshots`` beside
    #: the SQLite database file)
    screenshots_dir: str | None = None
    #: a stand-in Discord on this machine (``http://127.0.0.1:PORT``) for discord.py's REST
    #: calls and gateway; None (the default): Discord itself. Loopback only (``bot.endpoint``)
    discord_api_url: str | None = None
    #: the ``[web]`` table: the ``/deployments`` board (on 127.0.0.1:8080 unless told)
    web: WebSettings = Field(default_factory=WebSettings)
    #: several processes: the bot's shard count (None: one process, one gateway session, as
    #: without sharding) and this process's shards (None: all of them). Each shard is held
    #: through a lease in the database (``conductor.shards``)
    shard_count: int | None = Field(default=None, ge=1, le=1024)
    shard_ids: Annotated[list[int] | None, NoDecode] = None
    #: how long a shard's lease lasts unrenewed: a process that died is replaced after it
    shard_lease_seconds: float = Field(default=30.0, ge=1.0, le=600.0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        driver = value.split("://", 1)[0].lower() if "://" in value else ""
        if driver not in ASYNC_DRIVERS:
            raise ValueError(
                f"needs an async driver ({', '.join(d + '://' for d in ASYNC_DRIVERS)}), "
                f"got {driver or 'no scheme'}://"
            )
        return value

    @field_validator("discord_api_url")
    @classmethod
    def _loopback_only(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return loopback_api_url(value)

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: Any) -> Any:
        # "0,1" or "0 1" in the environment; a real list in TOML.
        if isinstance(value, str):
            parts = value.replace(",", " ").split()
            return parts or None
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shards_within_count(cls, value: list[int] | None, info: ValidationInfo) -> Any:
        if value is None:
            return None
        count = info.data.get("shard_count")
        if count is None:
            raise ValueError("needs CONDUCTOR_SHARD_COUNT (the bot's total number of shards)")
        if not value:
            raise ValueError("names no shard")
        outside = sorted({i for i in value if not 0 <= i < count})
        if outside:
            raise ValueError(f"shards are 0 to {count - 1} with {count} shards, got {outside}")
        if len(set(value)) != len(value):
            raise ValueError("names a shard twice")
        return sorted(value)

    def login_missing(self) -> list[str]:
        """What the board's Login with Discord lacks, each setting named as written (empty:
        nothing, or the board is on loopback and needs no login)."""
        if not self.web.needs_login:
            return []
        wanted = {
            "client_id": self.web.client_id,
            "client_secret": self.web.client_secret,
            "public_url": self.web.public_url,
        }
        missing = [
            f"[web] {name} (CONDUCTOR_WEB_{name.upper()})"
            for name, value in wanted.items()
            if value is None
        ]
        if self.guild_id is None:
            missing.append("guild_id (CONDUCTOR_GUILD_ID): the guild whose members are let in")
        return missing

    @property
    def shards(self) -> tuple[int, ...] | None:
        """This process's shards (None: not sharded)."""
        if self.shard_count is None:
            return None
        return tuple(self.shard_ids or range(self.shard_count))

    @field_validator("handoff_channels", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        # "handoffs, agents" in the environment; a real list in TOML.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not cls.reads_outside:
            return (init_settings,)
        path = readable_config()
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            _WebEnvironment(settings_cls),
        ]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def written_at(location: tuple[str | int, ...]) -> str:
    """Where the setting a validation error points at (its ``loc``) was written, to name it
    so: its environment variable when that is set (``CONDUCTOR_WEB_PORT``), else the config
    file's key (``conductor.toml: [web] port``, ``conductor.toml: guild_id``); the variable
    when neither holds it (a default, or a key the file cannot have)."""
    parts = [str(part) for part in location if not isinstance(part, int)]
    if not parts:
        return "settings"
    variable = f"CONDUCTOR_{'_'.join(parts).upper()}"
    if variable in {name.upper() for name in os.environ}:  # pydantic-settings ignores case
        return variable
    try:
        path = readable_config()
        table: Any = tomllib.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):  # already reported as such: Settings() read it
        table = None
    for part in parts:
        if not isinstance(table, dict) or part not in table:
            return variable
        table = table[part]
    *tables, key = parts
    return f"{path}: {''.join(f'[{name}] ' for name in tables)}{key}"
