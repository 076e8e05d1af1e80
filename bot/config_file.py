"""Where the config file is, without pydantic-settings: ``conductor smoke`` reads only this
(``bot.settings`` and its pydantic-settings cost ~0.1 s of a run's imports)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CONFIG_FILE = "conductor.toml"


class ConfigFileError(ValueError):
    """``CONDUCTOR_CONFIG`` names a file that cannot be read; the message says which and why."""


def config_file() -> Path:
    return Path(os.environ.get("CONDUCTOR_CONFIG", DEFAULT_CONFIG_FILE))


def readable_config() -> Path | None:
    """The config file to read: the default one when it exists; the one ``CONDUCTOR_CONFIG``
    names, which must then exist and be a file (a typo must not silently mean "no config")."""
    path = config_file()
    named = "CONDUCTOR_CONFIG" in os.environ
    if path.is_file():
        return path
    if not named:
        return None
    what = "is a directory" if path.is_dir() else "does not exist"
    raise ConfigFileError(f"CONDUCTOR_CONFIG: {path} {what}")
